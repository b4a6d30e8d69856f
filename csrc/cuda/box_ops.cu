// CUDA kernels of the box-overlap ops. The formulas are the ones in common/box_math.h, shared with
// the CPU kernels.
#include "common/box_checks.h"
#include "common/box_math.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"

namespace vision_kernels::cuda {
namespace {

// Rows of boxes1 one block handles: each thread owns one column (a box of boxes2), loads it once
// and computes kRowsPerBlock outputs; consecutive threads write consecutive outputs (coalesced).
constexpr int kRowsPerBlock = 8;

template <BoxMode M, typename T>
__global__ void pairwise_kernel(const T* __restrict__ boxes1, const T* __restrict__ boxes2,
                                T* __restrict__ out, int64_t n, int64_t m, acc_t<T> eps) {
  using A = acc_t<T>;
  __shared__ BoxTerms<A> rows[kRowsPerBlock];
  const int64_t batch = blockIdx.z;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const T* b1 = boxes1 + batch * n * 4;
  BoxTerms<A> col;
  if (j < m) {
    const T* b = boxes2 + (batch * m + j) * 4;
    col = BoxTerms<A>::make(A(b[0]), A(b[1]), A(b[2]), A(b[3]));
  }
  for (int64_t row0 = static_cast<int64_t>(blockIdx.y) * kRowsPerBlock; row0 < n;
       row0 += static_cast<int64_t>(gridDim.y) * kRowsPerBlock) {
    if (threadIdx.x < kRowsPerBlock && row0 + threadIdx.x < n) {
      const T* b = b1 + (row0 + threadIdx.x) * 4;
      rows[threadIdx.x] = BoxTerms<A>::make(A(b[0]), A(b[1]), A(b[2]), A(b[3]));
    }
    __syncthreads();
    if (j < m) {
      const int rows_here = static_cast<int>(vk_min<int64_t>(kRowsPerBlock, n - row0));
      T* o = out + (batch * n + row0) * m + j;
#pragma unroll
      for (int r = 0; r < kRowsPerBlock; ++r) {
        if (r < rows_here) o[r * m] = static_cast<T>(box_overlap<M>(rows[r], col, eps));
      }
    }
    __syncthreads();
  }
}

template <BoxMode M, typename T>
__global__ void aligned_forward_kernel(const T* __restrict__ boxes1, const T* __restrict__ boxes2,
                                       T* __restrict__ out, int64_t count, acc_t<T> eps) {
  using A = acc_t<T>;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < count;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const T* a = boxes1 + 4 * k;
    const T* b = boxes2 + 4 * k;
    out[k] = static_cast<T>(box_overlap<M>(BoxTerms<A>::make(A(a[0]), A(a[1]), A(a[2]), A(a[3])),
                                           BoxTerms<A>::make(A(b[0]), A(b[1]), A(b[2]), A(b[3])),
                                           eps));
  }
}

template <BoxMode M, typename T>
__global__ void aligned_backward_kernel(const T* __restrict__ grad, const T* __restrict__ boxes1,
                                        const T* __restrict__ boxes2, T* __restrict__ grad1,
                                        T* __restrict__ grad2, int64_t count, acc_t<T> eps) {
  using A = acc_t<T>;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < count;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    A a[4], b[4], ga[4], gb[4];
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      a[c] = A(boxes1[4 * k + c]);
      b[c] = A(boxes2[4 * k + c]);
    }
    box_overlap_backward<M>(A(grad[k]), a, b, eps, ga, gb);
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      grad1[4 * k + c] = static_cast<T>(ga[c]);
      grad2[4 * k + c] = static_cast<T>(gb[c]);
    }
  }
}

template <typename T>
__global__ void convert_kernel(const T* __restrict__ in, T* __restrict__ out, int64_t count,
                               BoxFormat from, BoxFormat to) {
  using A = acc_t<T>;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < count;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    A src[4], dst[4];
#pragma unroll
    for (int c = 0; c < 4; ++c) src[c] = A(in[4 * k + c]);
    box_convert_one(src, dst, from, to);
#pragma unroll
    for (int c = 0; c < 4; ++c) out[4 * k + c] = static_cast<T>(dst[c]);
  }
}

#define VK_DISPATCH_FLOATS(dtype, name, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, name, __VA_ARGS__)

}  // namespace

at::Tensor box_iou(const at::Tensor& boxes1, const at::Tensor& boxes2, c10::string_view mode,
                   double eps) {
  const auto out_shape = check_pairwise(boxes1, boxes2);
  const BoxMode box_mode = parse_box_mode(mode);
  const c10::cuda::CUDAGuard guard(boxes1.device());
  auto out = at::empty(out_shape, boxes1.options());
  if (out.numel() == 0) return out;
  const auto b1 = boxes1.contiguous();
  const auto b2 = boxes2.contiguous();
  const int64_t batches = b1.dim() == 3 ? b1.size(0) : 1;
  const int64_t n = b1.size(-2), m = b2.size(-2);
  TORCH_CHECK_VALUE(batches <= 65535, "box_iou on CUDA supports at most 65535 batches, got ",
                    batches);
  const dim3 grid(static_cast<unsigned int>((m + kThreads - 1) / kThreads),
                  static_cast<unsigned int>(std::min<int64_t>((n + kRowsPerBlock - 1) / kRowsPerBlock,
                                                              65535)),
                  static_cast<unsigned int>(batches));
  const auto stream = c10::cuda::getCurrentCUDAStream();
  VK_DISPATCH_FLOATS(b1.scalar_type(), "vision_kernels::box_iou", [&] {
    dispatch_box_mode(box_mode, [&](auto mode_c) {
      pairwise_kernel<decltype(mode_c)::value, scalar_t><<<grid, kThreads, 0, stream>>>(
          b1.const_data_ptr<scalar_t>(), b2.const_data_ptr<scalar_t>(),
          out.mutable_data_ptr<scalar_t>(), n, m, static_cast<acc_t<scalar_t>>(eps));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return out;
}

at::Tensor box_iou_aligned(const at::Tensor& boxes1, const at::Tensor& boxes2,
                           c10::string_view mode, double eps) {
  check_aligned(boxes1, boxes2);
  const BoxMode box_mode = parse_box_mode(mode);
  const c10::cuda::CUDAGuard guard(boxes1.device());
  auto out = at::empty(boxes1.sizes().slice(0, boxes1.dim() - 1), boxes1.options());
  const int64_t count = out.numel();
  if (count == 0) return out;
  const auto b1 = boxes1.contiguous();
  const auto b2 = boxes2.contiguous();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  VK_DISPATCH_FLOATS(b1.scalar_type(), "vision_kernels::box_iou_aligned", [&] {
    dispatch_box_mode(box_mode, [&](auto mode_c) {
      aligned_forward_kernel<decltype(mode_c)::value, scalar_t>
          <<<blocks_for(count), kThreads, 0, stream>>>(
              b1.const_data_ptr<scalar_t>(), b2.const_data_ptr<scalar_t>(),
              out.mutable_data_ptr<scalar_t>(), count, static_cast<acc_t<scalar_t>>(eps));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> box_iou_aligned_backward(const at::Tensor& grad,
                                                            const at::Tensor& boxes1,
                                                            const at::Tensor& boxes2,
                                                            c10::string_view mode, double eps) {
  check_aligned(boxes1, boxes2);
  check_aligned_grad(grad, boxes1);
  const BoxMode box_mode = parse_box_mode(mode);
  const c10::cuda::CUDAGuard guard(boxes1.device());
  auto grad1 = at::empty(boxes1.sizes(), boxes1.options());
  auto grad2 = at::empty(boxes2.sizes(), boxes2.options());
  const int64_t count = grad.numel();
  if (count == 0) return {grad1, grad2};
  const auto b1 = boxes1.contiguous();
  const auto b2 = boxes2.contiguous();
  const auto g = grad.contiguous();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  VK_DISPATCH_FLOATS(b1.scalar_type(), "vision_kernels::box_iou_aligned_backward", [&] {
    dispatch_box_mode(box_mode, [&](auto mode_c) {
      aligned_backward_kernel<decltype(mode_c)::value, scalar_t>
          <<<blocks_for(count), kThreads, 0, stream>>>(
              g.const_data_ptr<scalar_t>(), b1.const_data_ptr<scalar_t>(),
              b2.const_data_ptr<scalar_t>(), grad1.mutable_data_ptr<scalar_t>(),
              grad2.mutable_data_ptr<scalar_t>(), count, static_cast<acc_t<scalar_t>>(eps));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {grad1, grad2};
}

at::Tensor box_convert(const at::Tensor& boxes, c10::string_view in_fmt, c10::string_view out_fmt) {
  check_boxes(boxes, "boxes");
  const BoxFormat from = parse_box_format(in_fmt, "in_fmt");
  const BoxFormat to = parse_box_format(out_fmt, "out_fmt");
  const c10::cuda::CUDAGuard guard(boxes.device());
  auto out = at::empty(boxes.sizes(), boxes.options());
  const int64_t count = out.numel() / 4;
  if (count == 0) return out;
  const auto in = boxes.contiguous();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  VK_DISPATCH_FLOATS(in.scalar_type(), "vision_kernels::box_convert", [&] {
    convert_kernel<scalar_t><<<blocks_for(count), kThreads, 0, stream>>>(
        in.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), count, from, to);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace vision_kernels::cuda
