#pragma once
// Shared by the CPU (.cpp) and CUDA (.cu) translation units.

#if defined(__CUDACC__)
#define VK_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define VK_HOST_DEVICE inline __attribute__((always_inline))
#endif
