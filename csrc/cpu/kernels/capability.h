#pragma once
// The functions behind CpuKernels (csrc/cpu/kernels.h), declared in the namespace of the instruction
// set this translation unit is compiled for (-DVK_CPU_CAPABILITY=base|avx2|avx512). table.cpp
// collects them into that instruction set's CpuKernels.
#include <c10/core/ScalarType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include "cpu/kernels.h"

#ifndef VK_CPU_CAPABILITY
#error "compile with -DVK_CPU_CAPABILITY=<base|avx2|avx512>"
#endif

namespace vision_kernels::cpu::VK_CPU_CAPABILITY {

// box_kernels.cpp
void box_terms(c10::ScalarType dtype, const void* boxes, BoxTermsSoA terms, int64_t begin, int64_t end);
void pairwise_rows(const PairwiseArgs& args, int64_t begin, int64_t end);
void aligned_forward(const AlignedArgs& args, void* out, int64_t begin, int64_t end);
void aligned_backward(const AlignedArgs& args, const void* grad, void* grad1, void* grad2, int64_t begin,
                      int64_t end);
void convert(c10::ScalarType dtype, const void* in, void* out, BoxFormat from, BoxFormat to, int64_t begin,
             int64_t end);
int64_t nms_greedy(c10::ScalarType dtype, NmsScratch scratch, int64_t n, double threshold, int64_t* kept);

// norm_kernels.cpp
MeanM2<double> norm_plane_stats(const NormArgs& args, int64_t plane, int64_t begin, int64_t end);
void norm_plane_apply(const NormArgs& args, void* y, int64_t plane, int64_t begin, int64_t end, double mean,
                      double rstd);
GradSums norm_plane_grad_sums(const NormArgs& args, const void* grad, int64_t plane, int64_t begin, int64_t end,
                              double mean, double rstd);
void norm_plane_grad_apply(const NormArgs& args, const void* grad, void* grad_x, int64_t plane, int64_t begin,
                           int64_t end, double mean, double rstd, GradSums means);
void norm_cl_stats(const NormArgs& args, int64_t n, int64_t begin, int64_t end, MeanM2<double>* stats);
void norm_cl_apply(const NormArgs& args, void* y, int64_t n, int64_t begin, int64_t end, const double* mean,
                   const double* rstd);
void norm_cl_grad_sums(const NormArgs& args, const void* grad, int64_t n, int64_t begin, int64_t end,
                       const double* mean, const double* rstd, GradSums* sums);
void norm_cl_grad_apply(const NormArgs& args, const void* grad, void* grad_x, int64_t n, int64_t begin,
                        int64_t end, const double* mean, const double* rstd, const GradSums* means);

// Calls f(scalar_t{}) for the four floating dtypes.
template <typename F>
void dispatch_float(c10::ScalarType dtype, F&& f) {
  switch (dtype) {
    case c10::ScalarType::Float: return f(float{});
    case c10::ScalarType::Double: return f(double{});
    case c10::ScalarType::Half: return f(c10::Half{});
    case c10::ScalarType::BFloat16: return f(c10::BFloat16{});
    default: TORCH_CHECK(false, "vision_kernels: unsupported dtype ", dtype);
  }
}

}  // namespace vision_kernels::cpu::VK_CPU_CAPABILITY
