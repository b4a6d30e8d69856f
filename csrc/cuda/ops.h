#pragma once
// CUDA implementations of the vision_kernels ops (defined in csrc/cuda/*.cu, registered for the
// CUDA dispatch key in csrc/cuda/register.cpp so that nvcc never compiles torch/library.h).
#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

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

}  // namespace vision_kernels::cuda
