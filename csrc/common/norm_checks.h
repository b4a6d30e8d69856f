#pragma once
// Argument checks of the instance-norm ops, shared by the CPU and CUDA entry points (the Python
// layer, vision_kernels/ops/_checks.py, raises the same messages before dispatch).
#include <ATen/ATen.h>
#include <c10/util/string_view.h>

#include "common/norm_math.h"

namespace vision_kernels {

inline Activation parse_activation(c10::string_view activation) {
  if (activation == "none") return Activation::None;
  if (activation == "relu") return Activation::ReLU;
  if (activation == "leaky_relu") return Activation::LeakyReLU;
  if (activation == "tanh") return Activation::Tanh;
  TORCH_CHECK_VALUE(false, "activation must be one of 'none', 'relu', 'leaky_relu', 'tanh', got '",
                    std::string(activation), "'");
}

// input [N, C, *spatial] with optional [C] weight and bias (instance and batch norm alike).
inline void check_instance_norm(const at::Tensor& input, const std::optional<at::Tensor>& weight,
                                const std::optional<at::Tensor>& bias) {
  TORCH_CHECK_TYPE(at::isFloatingType(input.scalar_type()),
                   "input must be a floating-point tensor (float16, bfloat16, float32 or float64), got ",
                   input.scalar_type());
  TORCH_CHECK_VALUE(input.dim() >= 3 && input.dim() <= 5,
                    "input must be [N, C, L], [N, C, H, W] or [N, C, D, H, W], got ", input.sizes());
  for (const auto& [param, name] : {std::pair{&weight, "weight"}, std::pair{&bias, "bias"}}) {
    if (!param->has_value() || !param->value().defined()) continue;
    const at::Tensor& p = param->value();
    TORCH_CHECK_VALUE(p.dim() == 1 && p.size(0) == input.size(1), name,
                      " must have shape [C] with C = input.shape[1] = ", input.size(1), ", got ",
                      p.sizes());
    TORCH_CHECK_TYPE(at::isFloatingType(p.scalar_type()), name,
                     " must be a floating-point tensor, got ", p.scalar_type());
    TORCH_CHECK_VALUE(p.device() == input.device(), name, " and input must be on the same device, got ",
                      p.device(), " and ", input.device());
  }
}

// per_instance: statistics [N, C] (instance norm); else [C] (batch norm).
inline void check_norm_backward(const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& mean,
                                const at::Tensor& rstd, bool per_instance) {
  TORCH_CHECK_VALUE(grad_out.sizes() == input.sizes(), "grad_out must have the shape of input ",
                    input.sizes(), ", got ", grad_out.sizes());
  TORCH_CHECK_TYPE(grad_out.scalar_type() == input.scalar_type(), "grad_out must have input's dtype ",
                   input.scalar_type(), ", got ", grad_out.scalar_type());
  for (const auto& [t, name] : {std::pair{&mean, "mean"}, std::pair{&rstd, "rstd"}}) {
    if (per_instance) {
      TORCH_CHECK_VALUE(t->dim() == 2 && t->size(0) == input.size(0) && t->size(1) == input.size(1), name,
                        " must have shape [N, C] = [", input.size(0), ", ", input.size(1), "], got ", t->sizes());
    } else {
      TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == input.size(1), name, " must have shape [C] = [",
                        input.size(1), "], got ", t->sizes());
    }
  }
}

// The layout the kernels see: [N, C, S] with contiguous planes, or [N, S, C] (channels last).
inline bool is_channels_last_layout(const at::Tensor& input) {
  return !input.is_contiguous() && input.movedim(1, -1).is_contiguous();
}

}  // namespace vision_kernels
