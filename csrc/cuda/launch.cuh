#pragma once
// Small helpers shared by the CUDA kernels.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

namespace vision_kernels::cuda {

constexpr int kThreads = 256;

// Blocks for a 1-D grid-stride loop over n items (capped: the loop covers the rest).
inline unsigned int blocks_for(int64_t n, int threads = kThreads) {
  return static_cast<unsigned int>(std::min<int64_t>((n + threads - 1) / threads, 65535 * 8));
}

}  // namespace vision_kernels::cuda
