#pragma once
// CUDA implementations of the vision_kernels ops (defined in csrc/cuda/*.cu, registered for the
// CUDA dispatch key in csrc/cuda/register.cpp so that nvcc never compiles torch/library.h).
#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <optional>
#include <tuple>

namespace vision_kernels::cuda {

at::Tensor box_iou(const at::Tensor& boxes1, const at::Tensor& boxes2, c10::string_view mode,
                   double eps);
at::Tensor box_iou_aligned(const at::Tensor& boxes1, const at::Tensor& boxes2,
                           c10::string_view mode, double eps);
std::tuple<at::Tensor, at::Tensor> box_iou_aligned_backward(const at::Tensor& grad,
                                                            const at::Tensor& boxes1,
                                                            const at::Tensor& boxes2,
                                                            c10::string_view mode, double eps);
at::Tensor box_convert(const at::Tensor& boxes, c10::string_view in_fmt, c10::string_view out_fmt);
at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);
at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
                       double iou_threshold);
std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm(const at::Tensor& input,
                                                             const std::optional<at::Tensor>& weight,
                                                             const std::optional<at::Tensor>& bias, double eps,
                                                             c10::string_view activation, double negative_slope);
std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_backward(
    const at::Tensor& grad_out, const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
    c10::string_view activation, double negative_slope);
std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act(const at::Tensor& input,
                                                              const std::optional<at::Tensor>& weight,
                                                              const std::optional<at::Tensor>& bias, double eps,
                                                              c10::string_view activation, double negative_slope);
std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_backward(
    const at::Tensor& grad_out, const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
    c10::string_view activation, double negative_slope);

}  // namespace vision_kernels::cuda
