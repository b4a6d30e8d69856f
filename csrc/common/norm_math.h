#pragma once
// Normalization math shared by the CPU and CUDA kernels: fused activations and their derivatives,
// and Chan's merge of (count, mean, M2) statistics (the parallel form of Welford's algorithm), so
// that partial statistics of chunks combine without ever forming E[x^2] - E[x]^2.
#include <c10/util/string_view.h>

#include <cmath>

#include "common/macros.h"
#include "common/numeric.h"

namespace vision_kernels {

enum class Activation : int { None = 0, ReLU = 1, LeakyReLU = 2, Tanh = 3 };

VK_HOST_DEVICE float vk_tanh(float z) { return tanhf(z); }
VK_HOST_DEVICE double vk_tanh(double z) { return tanh(z); }

template <typename T>
VK_HOST_DEVICE T activate(T z, Activation act, T slope) {
  if (act == Activation::ReLU) return z > T(0) ? z : T(0);
  if (act == Activation::LeakyReLU) return z > T(0) ? z : z * slope;
  if (act == Activation::Tanh) return vk_tanh(z);
  return z;
}

// d activate / dz, as torch's threshold_backward / leaky_relu_backward / tanh_backward define it
// (0 or slope at z == 0).
template <typename T>
VK_HOST_DEVICE T activation_slope(T z, Activation act, T slope) {
  if (act == Activation::ReLU) return z > T(0) ? T(1) : T(0);
  if (act == Activation::LeakyReLU) return z > T(0) ? T(1) : slope;
  if (act == Activation::Tanh) {
    const T t = vk_tanh(z);
    return T(1) - t * t;
  }
  return T(1);
}

// Statistics of `count` values: their mean and the sum of squared deviations from it (M2).
template <typename T>
struct MeanM2 {
  T count;
  T mean;
  T m2;
};

// Chan et al.: the statistics of the union of two disjoint sets.
template <typename T>
VK_HOST_DEVICE MeanM2<T> merge(MeanM2<T> a, MeanM2<T> b) {
  const T count = a.count + b.count;
  if (count == T(0)) return a;
  const T delta = b.mean - a.mean;
  const T share = b.count / count;
  return {count, a.mean + delta * share, a.m2 + b.m2 + delta * delta * a.count * share};
}

}  // namespace vision_kernels
