#pragma once
// Small numeric helpers shared by every kernel, host and device.
#include "common/macros.h"

namespace vision_kernels {

// The type kernels compute in: float for float16/bfloat16/float32, double for float64.
template <typename T>
struct AccType { using type = float; };
template <>
struct AccType<double> { using type = double; };
template <typename T>
using acc_t = typename AccType<T>::type;

template <typename T>
VK_HOST_DEVICE T vk_min(T a, T b) { return b < a ? b : a; }
template <typename T>
VK_HOST_DEVICE T vk_max(T a, T b) { return a < b ? b : a; }

}  // namespace vision_kernels
