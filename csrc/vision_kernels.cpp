// Every op schema of the vision_kernels namespace, and the pybind11 module vision_kernels._C.
//
// Kernels register per device elsewhere (csrc/cpu, csrc/cuda); fake (meta) kernels and autograd
// formulas are registered from Python in the module named by set_python_module below.
#include <pybind11/pybind11.h>
#include <torch/library.h>

#include <string>

#include "cpu/kernels.h"

#ifndef VK_CUDA_VERSION
#define VK_CUDA_VERSION ""
#endif

TORCH_LIBRARY(vision_kernels, m) {
  m.set_python_module("vision_kernels.ops._native");
  const std::vector<at::Tag> tags{at::Tag::pt2_compliant_tag};
  // Box overlap: mode is iou, giou, diou, ciou or iof; boxes are (x1, y1, x2, y2).
  m.def("box_iou(Tensor boxes1, Tensor boxes2, str mode=\"iou\", float eps=1e-07) -> Tensor", tags);
  m.def("box_iou_aligned(Tensor boxes1, Tensor boxes2, str mode=\"iou\", float eps=1e-07) -> Tensor",
        tags);
  m.def("box_iou_aligned_backward(Tensor grad, Tensor boxes1, Tensor boxes2, str mode, float eps)"
        " -> (Tensor, Tensor)", tags);
  m.def("box_convert(Tensor boxes, str in_fmt, str out_fmt) -> Tensor", tags);
  m.def("nms(Tensor boxes, Tensor scores, float iou_threshold) -> Tensor", tags);
  m.def("batched_nms(Tensor boxes, Tensor scores, Tensor idxs, float iou_threshold) -> Tensor", tags);
  // Instance norm with a fused activation (none, relu, leaky_relu); returns (out, mean, rstd), the
  // statistics per [N, C] in float32 (float64 for float64 input) for the backward.
  m.def("instance_norm(Tensor input, Tensor? weight, Tensor? bias, float eps, str activation, "
        "float negative_slope) -> (Tensor, Tensor, Tensor)", tags);
  // Returns (grad_input, grad_weight, grad_bias); a gradient of an absent parameter is empty.
  m.def("instance_norm_backward(Tensor grad_out, Tensor input, Tensor? weight, Tensor? bias, Tensor mean, "
        "Tensor rstd, str activation, float negative_slope) -> (Tensor, Tensor, Tensor)", tags);
  // Batch norm with batch statistics (training), then an activation (none, relu, leaky_relu, tanh);
  // returns (out, mean, rstd) with [C] statistics. The running statistics are updated by the caller.
  m.def("batch_norm_act(Tensor input, Tensor? weight, Tensor? bias, float eps, str activation, "
        "float negative_slope) -> (Tensor, Tensor, Tensor)", tags);
  m.def("batch_norm_act_backward(Tensor grad_out, Tensor input, Tensor? weight, Tensor? bias, Tensor mean, "
        "Tensor rstd, str activation, float negative_slope) -> (Tensor, Tensor, Tensor)", tags);
}

namespace {

std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown";
#endif
}

pybind11::dict build_info() {
  pybind11::dict info;
  info["torch_version"] = VK_TORCH_VERSION;
  info["compiler"] = compiler();
#ifdef _OPENMP
  info["openmp"] = _OPENMP;
#else
  info["openmp"] = pybind11::none();
#endif
#ifdef VK_WITH_CUDA
  info["cuda"] = true;
#else
  info["cuda"] = false;
#endif
  info["cuda_version"] = VK_CUDA_VERSION;
  info["cuda_architectures"] = VK_CUDA_ARCHS;
  info["cpu_capability"] = vision_kernels::cpu::cpu_kernels().capability;
  info["cpu_capabilities_compiled"] = VK_CPU_CAPABILITIES;
  return info;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "vision_kernels native ops (registered in torch.ops.vision_kernels) and build info";
  m.def("build_info", &build_info, "How this extension was built and which CPU kernels it runs");
}
