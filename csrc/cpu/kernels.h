#pragma once
// The hot loops of the CPU box ops, compiled once per instruction set (csrc/cpu/kernels/*.cpp is
// built as base, avx2 and avx512 objects; see CMakeLists.txt) and chosen at run time by
// cpu_kernels(). Callers split the work into ranges and run them with at::parallel_for; the
// loops themselves are single-threaded and written for the compiler to vectorize.
//
// "acc" below is the accumulation type: float for float16/bfloat16/float32, double for float64.
#include <c10/core/ScalarType.h>

#include <cstdint>

#include "common/box_math.h"
#include "common/norm_math.h"

namespace vision_kernels::cpu {

// Per-box terms (see BoxTerms) as 8 arrays of `count` acc values: x1, y1, x2, y2, area, cx, cy, angle.
struct BoxTermsSoA {
  void* data;  // 8 * count acc values
  int64_t count;
};

struct PairwiseArgs {
  c10::ScalarType dtype;
  BoxMode mode;
  int64_t rows_per_batch;  // N
  int64_t cols;            // M
  const void* boxes1;      // [B*N, 4] contiguous, dtype
  BoxTermsSoA terms2;      // B*M boxes of boxes2
  void* out;               // [B*N, M] contiguous, dtype
  double eps;
};

struct AlignedArgs {
  c10::ScalarType dtype;
  BoxMode mode;
  const void* boxes1;  // [K, 4] contiguous, dtype
  const void* boxes2;  // [K, 4]
  double eps;
};

// Sorted-by-score candidates for greedy NMS, compacted in place as boxes are suppressed.
struct NmsScratch {
  void* x1; void* y1; void* x2; void* y2; void* area;  // acc arrays
  int64_t* position;                                  // caller's id of each candidate
  uint8_t* suppressed;                                // scratch
};

// Instance norm. Plane p = n * C + c has S elements: at x + p * S when contiguous ([N, C, S]),
// at x + n * S * C + c with stride C when channels last ([N, S, C]). Statistics accumulate in
// double; the elementwise work runs in acc. weight/bias are acc arrays of C values, or null.
struct NormArgs {
  c10::ScalarType dtype;  // of x, y, grad, grad_x
  int64_t channels;       // C
  int64_t plane_size;     // S
  const void* x;
  const void* weight;
  const void* bias;
  Activation act;
  double slope;
};

// Sums for the backward of one plane (or of one channel over some rows, channels last):
// a = sum(g_z), b = sum(g_z * xhat), where g_z is the gradient through the activation. The apply
// kernels take the means instead: the sums divided by the number of values in the group.
struct GradSums {
  double a;
  double b;
};

struct CpuKernels {
  const char* capability;
  // terms[i] for boxes [begin, end) of `boxes` ([count, 4], dtype) into `terms`.
  void (*box_terms)(c10::ScalarType dtype, const void* boxes, BoxTermsSoA terms, int64_t begin,
                    int64_t end);
  // out rows [begin, end) of the [B*N, M] pairwise result.
  void (*pairwise_rows)(const PairwiseArgs& args, int64_t begin, int64_t end);
  // out[k] for k in [begin, end).
  void (*aligned_forward)(const AlignedArgs& args, void* out, int64_t begin, int64_t end);
  void (*aligned_backward)(const AlignedArgs& args, const void* grad, void* grad1, void* grad2,
                           int64_t begin, int64_t end);
  void (*convert)(c10::ScalarType dtype, const void* in, void* out, BoxFormat from, BoxFormat to,
                  int64_t begin, int64_t end);
  // Greedy NMS over n candidates in score order (acc = float unless dtype is float64). Writes the
  // positions of the kept candidates to `kept` in order and returns how many. `threshold` is
  // compared as torchvision's CPU kernel does: iou > threshold in double precision.
  int64_t (*nms_greedy)(c10::ScalarType dtype, NmsScratch scratch, int64_t n, double threshold,
                        int64_t* kept);

  // ---- instance norm, contiguous planes: elements [begin, end) of plane `plane` ----
  MeanM2<double> (*norm_plane_stats)(const NormArgs& args, int64_t plane, int64_t begin, int64_t end);
  // y = act((x - mean) * rstd * weight + bias)
  void (*norm_plane_apply)(const NormArgs& args, void* y, int64_t plane, int64_t begin, int64_t end,
                           double mean, double rstd);
  GradSums (*norm_plane_grad_sums)(const NormArgs& args, const void* grad, int64_t plane,
                                   int64_t begin, int64_t end, double mean, double rstd);
  // grad_x = rstd * weight * (g_z - means.a - xhat * means.b)
  void (*norm_plane_grad_apply)(const NormArgs& args, const void* grad, void* grad_x, int64_t plane,
                                int64_t begin, int64_t end, double mean, double rstd, GradSums means);

  // ---- instance norm, channels last: rows [begin, end) of image n, all C channels at once ----
  // stats[c] for c < C.
  void (*norm_cl_stats)(const NormArgs& args, int64_t n, int64_t begin, int64_t end, MeanM2<double>* stats);
  // mean and rstd: C values each, for image n.
  void (*norm_cl_apply)(const NormArgs& args, void* y, int64_t n, int64_t begin, int64_t end,
                        const double* mean, const double* rstd);
  void (*norm_cl_grad_sums)(const NormArgs& args, const void* grad, int64_t n, int64_t begin, int64_t end,
                            const double* mean, const double* rstd, GradSums* sums);
  void (*norm_cl_grad_apply)(const NormArgs& args, const void* grad, void* grad_x, int64_t n, int64_t begin,
                             int64_t end, const double* mean, const double* rstd, const GradSums* means);
};

// The kernels for the best instruction set this CPU supports, or the one named by the environment
// variable VK_CPU_CAPABILITY (base, avx2, avx512), like ATen's ATEN_CPU_CAPABILITY.
const CpuKernels& cpu_kernels();

}  // namespace vision_kernels::cpu
