// CPU implementations of the box-overlap ops: argument checks, allocation and the split into
// parallel ranges. The loops themselves are in csrc/cpu/kernels/box_kernels.cpp.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "common/box_checks.h"
#include "cpu/kernels.h"

namespace vision_kernels {
namespace {

// Work per parallel task, in box pairs: small enough to use both threads on a 1000x100 problem,
// large enough that scheduling stays negligible.
constexpr int64_t kPairsPerTask = 16384;

at::ScalarType acc_dtype(at::ScalarType dtype) {
  return dtype == at::kDouble ? at::kDouble : at::kFloat;
}

at::Tensor box_iou_cpu(const at::Tensor& boxes1, const at::Tensor& boxes2, c10::string_view mode,
                       double eps) {
  const auto out_shape = check_pairwise(boxes1, boxes2);
  const BoxMode box_mode = parse_box_mode(mode);
  auto out = at::empty(out_shape, boxes1.options());
  if (out.numel() == 0) return out;
  const auto b1 = boxes1.contiguous();
  const auto b2 = boxes2.contiguous();
  const auto dtype = b1.scalar_type();
  const int64_t rows = b1.numel() / 4, count2 = b2.numel() / 4;
  const int64_t n = b1.size(-2), m = b2.size(-2);
  const auto& kernels = cpu::cpu_kernels();

  // Per-box terms of boxes2 (area, centre, angle...) once, as contiguous arrays for the inner loop.
  auto terms = at::empty({8 * count2}, b1.options().dtype(acc_dtype(dtype)));
  const cpu::BoxTermsSoA soa{terms.mutable_data_ptr(), count2};
  at::parallel_for(0, count2, 8192, [&](int64_t begin, int64_t end) {
    kernels.box_terms(dtype, b2.const_data_ptr(), soa, begin, end);
  });
  const cpu::PairwiseArgs args{dtype, box_mode, n, m, b1.const_data_ptr(), soa,
                               out.mutable_data_ptr(), eps};
  at::parallel_for(0, rows, std::max<int64_t>(1, kPairsPerTask / m),
                   [&](int64_t begin, int64_t end) { kernels.pairwise_rows(args, begin, end); });
  return out;
}

at::Tensor box_iou_aligned_cpu(const at::Tensor& boxes1, const at::Tensor& boxes2,
                               c10::string_view mode, double eps) {
  check_aligned(boxes1, boxes2);
  const BoxMode box_mode = parse_box_mode(mode);
  auto out = at::empty(boxes1.sizes().slice(0, boxes1.dim() - 1), boxes1.options());
  if (out.numel() == 0) return out;
  const auto b1 = boxes1.contiguous();
  const auto b2 = boxes2.contiguous();
  const cpu::AlignedArgs args{b1.scalar_type(), box_mode, b1.const_data_ptr(), b2.const_data_ptr(),
                              eps};
  const auto& kernels = cpu::cpu_kernels();
  at::parallel_for(0, out.numel(), kPairsPerTask / 4, [&](int64_t begin, int64_t end) {
    kernels.aligned_forward(args, out.mutable_data_ptr(), begin, end);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> box_iou_aligned_backward_cpu(const at::Tensor& grad,
                                                                const at::Tensor& boxes1,
                                                                const at::Tensor& boxes2,
                                                                c10::string_view mode, double eps) {
  check_aligned(boxes1, boxes2);
  check_aligned_grad(grad, boxes1);
  const BoxMode box_mode = parse_box_mode(mode);
  auto grad1 = at::empty(boxes1.sizes(), boxes1.options());
  auto grad2 = at::empty(boxes2.sizes(), boxes2.options());
  if (grad.numel() == 0) return {grad1, grad2};
  const auto b1 = boxes1.contiguous();
  const auto b2 = boxes2.contiguous();
  const auto g = grad.contiguous();
  const cpu::AlignedArgs args{b1.scalar_type(), box_mode, b1.const_data_ptr(), b2.const_data_ptr(),
                              eps};
  const auto& kernels = cpu::cpu_kernels();
  at::parallel_for(0, g.numel(), kPairsPerTask / 16, [&](int64_t begin, int64_t end) {
    kernels.aligned_backward(args, g.const_data_ptr(), grad1.mutable_data_ptr(),
                             grad2.mutable_data_ptr(), begin, end);
  });
  return {grad1, grad2};
}

at::Tensor box_convert_cpu(const at::Tensor& boxes, c10::string_view in_fmt,
                           c10::string_view out_fmt) {
  check_boxes(boxes, "boxes");
  const BoxFormat from = parse_box_format(in_fmt, "in_fmt");
  const BoxFormat to = parse_box_format(out_fmt, "out_fmt");
  auto out = at::empty(boxes.sizes(), boxes.options());
  if (out.numel() == 0) return out;
  const auto in = boxes.contiguous();
  const auto& kernels = cpu::cpu_kernels();
  at::parallel_for(0, in.numel() / 4, kPairsPerTask, [&](int64_t begin, int64_t end) {
    kernels.convert(in.scalar_type(), in.const_data_ptr(), out.mutable_data_ptr(), from, to, begin,
                    end);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(vision_kernels, CPU, m) {
  m.impl("box_iou", &box_iou_cpu);
  m.impl("box_iou_aligned", &box_iou_aligned_cpu);
  m.impl("box_iou_aligned_backward", &box_iou_aligned_backward_cpu);
  m.impl("box_convert", &box_convert_cpu);
}

}  // namespace vision_kernels
