// CUDA instance norm and batch norm (batch statistics) with a fused activation, forward and backward.
//
// Statistics are per "group": a plane (sample, channel) for instance norm, a channel over the batch
// for batch norm; both reduce the same per-plane chunks and differ only in how the finalize kernels
// merge them.
//
// Planes (sample, channel) are cut into chunks so that one large plane (batch 1, 256x256 and up)
// occupies many blocks. Per chunk, statistics by two passes: the sum of x - pivot (the chunk's
// first element: float sums stay accurate when the mean is large next to the spread), then the sum
// of squared deviations from the chunk mean. A finalize kernel merges the chunks of a plane in
// order with Chan's formula. Every reduction has a fixed order (shared-memory trees, no atomics):
// results are deterministic. Contiguous planes ([N, C, S]) and channels last ([N, S, C]) have
// their own reduction kernels (the latter reads 32 channels x 8 rows per step, coalesced); the
// elementwise kernels serve both.
#include "common/norm_checks.h"
#include "common/norm_math.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"

namespace vision_kernels::cuda {
namespace {

constexpr int kChunk = 4096;     // elements of a contiguous plane per block
constexpr int kRowChunk = 256;   // rows per block, channels last
constexpr int kTileC = 32, kTileR = 8;

template <typename A>
__device__ A block_sum(A value, A* shared) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  const A total = shared[0];
  __syncthreads();
  return total;
}

// Sum over the 8 rows of a (32, 8) block, per channel lane; valid in threadIdx.y == 0.
template <typename A>
__device__ A column_sum(A value, A (*shared)[kTileC + 1]) {
  shared[threadIdx.y][threadIdx.x] = value;
  __syncthreads();
  A total = 0;
  if (threadIdx.y == 0) {
    for (int r = 0; r < kTileR; ++r) total += shared[r][threadIdx.x];
  }
  __syncthreads();
  return total;
}

template <typename T>
__global__ void plane_stats_kernel(const T* __restrict__ x, acc_t<T>* __restrict__ partial, int64_t S,
                                   int64_t chunks) {
  using A = acc_t<T>;
  __shared__ A shared[kThreads];
  const int64_t plane = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const int64_t begin = chunk * kChunk, end = vk_min<int64_t>(S, begin + kChunk);
  const T* p = x + plane * S;
  const A pivot = A(p[begin]);
  A sum = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) sum += A(p[i]) - pivot;
  const A count = A(end - begin);
  const A mean = pivot + block_sum(sum, shared) / count;
  A m2 = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const A d = A(p[i]) - mean;
    m2 += d * d;
  }
  m2 = block_sum(m2, shared);
  if (threadIdx.x == 0) {
    A* out = partial + (plane * chunks + chunk) * 3;
    out[0] = count;
    out[1] = mean;
    out[2] = m2;
  }
}

template <typename T>
__global__ void cl_stats_kernel(const T* __restrict__ x, acc_t<T>* __restrict__ partial, int64_t S, int64_t C,
                                int64_t chunks) {
  using A = acc_t<T>;
  __shared__ A shared[kTileR][kTileC + 1];
  __shared__ A means[kTileC];
  const int64_t chunk = blockIdx.x, n = blockIdx.y, c = int64_t(blockIdx.z) * kTileC + threadIdx.x;
  const int64_t begin = chunk * kRowChunk, end = vk_min<int64_t>(S, begin + kRowChunk);
  const T* p = x + n * S * C;
  const bool valid = c < C;
  const A pivot = valid ? A(p[begin * C + c]) : A(0);
  A sum = 0;
  if (valid) {
    for (int64_t r = begin + threadIdx.y; r < end; r += kTileR) sum += A(p[r * C + c]) - pivot;
  }
  const A count = A(end - begin);
  sum = column_sum(sum, shared);
  if (threadIdx.y == 0) means[threadIdx.x] = pivot + sum / count;
  __syncthreads();
  const A mean = means[threadIdx.x];
  A m2 = 0;
  if (valid) {
    for (int64_t r = begin + threadIdx.y; r < end; r += kTileR) {
      const A d = A(p[r * C + c]) - mean;
      m2 += d * d;
    }
  }
  m2 = column_sum(m2, shared);
  if (threadIdx.y == 0 && valid) {
    A* out = partial + ((n * C + c) * chunks + chunk) * 3;
    out[0] = count;
    out[1] = mean;
    out[2] = m2;
  }
}

// Which planes a group holds: plane g (instance norm), or planes n * C + g for every n (batch norm).
struct Groups {
  int64_t N, C;
  bool per_instance;
  __host__ __device__ int64_t count() const { return per_instance ? N * C : C; }
  __host__ __device__ int64_t planes_in_group() const { return per_instance ? 1 : N; }
  __host__ __device__ int64_t plane(int64_t group, int64_t k) const { return per_instance ? group : k * C + group; }
  __host__ __device__ int64_t of(int64_t plane, int64_t c) const { return per_instance ? plane : c; }
};

// One thread per group: Chan's merge of its planes' chunks, planes in order, chunks in order.
template <typename A>
__global__ void finalize_stats_kernel(const A* __restrict__ partial, A* __restrict__ mean, A* __restrict__ rstd,
                                      Groups groups, int64_t chunks, double eps) {
  const int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (g >= groups.count()) return;
  MeanM2<A> st{0, 0, 0};
  for (int64_t k = 0; k < groups.planes_in_group(); ++k) {
    const A* p = partial + groups.plane(g, k) * chunks * 3;
    for (int64_t j = 0; j < chunks; ++j) st = merge(st, MeanM2<A>{p[3 * j], p[3 * j + 1], p[3 * j + 2]});
  }
  mean[g] = st.mean;
  const A var = st.m2 / st.count;
  rstd[g] = A(1) / sqrt((var > A(0) ? var : A(0)) + A(eps));
}

struct Layout {
  int64_t S, C;
  bool channels_last;
  Groups groups;
  // The statistics group and channel of flat element i.
  __device__ void locate(int64_t i, int64_t& group, int64_t& c) const {
    int64_t plane;
    locate_plane(i, plane, c);
    group = groups.of(plane, c);
  }
  __device__ void locate_plane(int64_t i, int64_t& plane, int64_t& c) const {
    if (channels_last) {
      c = i % C;
      plane = (i / (S * C)) * C + c;
    } else {
      plane = i / S;
      c = plane % C;
    }
  }
};

template <typename A>
__device__ A param_or(const A* p, int64_t c, A absent) {
  return p ? p[c] : absent;
}

template <typename T>
__global__ void apply_kernel(const T* __restrict__ x, T* __restrict__ y, const acc_t<T>* __restrict__ mean,
                             const acc_t<T>* __restrict__ rstd, const acc_t<T>* __restrict__ weight,
                             const acc_t<T>* __restrict__ bias, Layout layout, int64_t total, Activation act,
                             acc_t<T> slope) {
  using A = acc_t<T>;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t group, c;
    layout.locate(i, group, c);
    const A z = (A(x[i]) - mean[group]) * rstd[group] * param_or(weight, c, A(1)) + param_or(bias, c, A(0));
    y[i] = static_cast<T>(activate(z, act, slope));
  }
}

struct GradParams {
  Activation act;
  double slope;
};

template <typename A>
__device__ void grad_terms(A x, A g, A mean, A rstd, A w, A b, Activation act, A slope, A& gz, A& xhat) {
  xhat = (x - mean) * rstd;
  gz = g * activation_slope(xhat * w + b, act, slope);
}

template <typename T>
__global__ void plane_grad_sums_kernel(const T* __restrict__ x, const T* __restrict__ g,
                                       const acc_t<T>* __restrict__ mean, const acc_t<T>* __restrict__ rstd,
                                       const acc_t<T>* __restrict__ weight, const acc_t<T>* __restrict__ bias,
                                       acc_t<T>* __restrict__ partial, int64_t S, int64_t C, int64_t chunks,
                                       Groups groups, Activation act, acc_t<T> slope) {
  using A = acc_t<T>;
  __shared__ A shared[kThreads];
  const int64_t plane = blockIdx.x / chunks, chunk = blockIdx.x % chunks, c = plane % C;
  const int64_t begin = chunk * kChunk, end = vk_min<int64_t>(S, begin + kChunk), grp = groups.of(plane, c);
  const A m = mean[grp], r = rstd[grp], w = param_or(weight, c, A(1)), b = param_or(bias, c, A(0));
  A sum_a = 0, sum_b = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    A gz, xhat;
    grad_terms(A(x[plane * S + i]), A(g[plane * S + i]), m, r, w, b, act, slope, gz, xhat);
    sum_a += gz;
    sum_b += gz * xhat;
  }
  sum_a = block_sum(sum_a, shared);
  sum_b = block_sum(sum_b, shared);
  if (threadIdx.x == 0) {
    partial[(plane * chunks + chunk) * 2] = sum_a;
    partial[(plane * chunks + chunk) * 2 + 1] = sum_b;
  }
}

template <typename T>
__global__ void cl_grad_sums_kernel(const T* __restrict__ x, const T* __restrict__ g,
                                    const acc_t<T>* __restrict__ mean, const acc_t<T>* __restrict__ rstd,
                                    const acc_t<T>* __restrict__ weight, const acc_t<T>* __restrict__ bias,
                                    acc_t<T>* __restrict__ partial, int64_t S, int64_t C, int64_t chunks,
                                    Groups groups, Activation act, acc_t<T> slope) {
  using A = acc_t<T>;
  __shared__ A shared[kTileR][kTileC + 1];
  const int64_t chunk = blockIdx.x, n = blockIdx.y, c = int64_t(blockIdx.z) * kTileC + threadIdx.x;
  const int64_t begin = chunk * kRowChunk, end = vk_min<int64_t>(S, begin + kRowChunk);
  const bool valid = c < C;
  A sum_a = 0, sum_b = 0;
  if (valid) {
    const int64_t grp = groups.of(n * C + c, c);
    const A m = mean[grp], r = rstd[grp], w = param_or(weight, c, A(1)), b = param_or(bias, c, A(0));
    const int64_t base = n * S * C + c;
    for (int64_t row = begin + threadIdx.y; row < end; row += kTileR) {
      A gz, xhat;
      grad_terms(A(x[base + row * C]), A(g[base + row * C]), m, r, w, b, act, slope, gz, xhat);
      sum_a += gz;
      sum_b += gz * xhat;
    }
  }
  sum_a = column_sum(sum_a, shared);
  sum_b = column_sum(sum_b, shared);
  if (threadIdx.y == 0 && valid) {
    partial[((n * C + c) * chunks + chunk) * 2] = sum_a;
    partial[((n * C + c) * chunks + chunk) * 2 + 1] = sum_b;
  }
}

// One thread per plane: its chunks' sums added in order.
template <typename A>
__global__ void finalize_grad_sums_kernel(const A* __restrict__ partial, A* __restrict__ sums, int64_t planes,
                                          int64_t chunks) {
  const int64_t plane = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (plane >= planes) return;
  A a = 0, b = 0;
  for (int64_t j = 0; j < chunks; ++j) {
    a += partial[(plane * chunks + j) * 2];
    b += partial[(plane * chunks + j) * 2 + 1];
  }
  sums[plane * 2] = a;
  sums[plane * 2 + 1] = b;
}

// One thread per group: the sums of its planes, in order, divided by the number of values.
template <typename A>
__global__ void group_means_kernel(const A* __restrict__ plane_sums, A* __restrict__ means, Groups groups,
                                   int64_t S) {
  const int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (g >= groups.count()) return;
  A a = 0, b = 0;
  for (int64_t k = 0; k < groups.planes_in_group(); ++k) {
    a += plane_sums[groups.plane(g, k) * 2];
    b += plane_sums[groups.plane(g, k) * 2 + 1];
  }
  const A count = A(S * groups.planes_in_group());
  means[g * 2] = a / count;
  means[g * 2 + 1] = b / count;
}

// One thread per channel: weight and bias gradients, the batch added in order.
template <typename A>
__global__ void param_grads_kernel(const A* __restrict__ sums, A* __restrict__ grad_w, A* __restrict__ grad_b,
                                   int64_t N, int64_t C) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  A a = 0, b = 0;
  for (int64_t n = 0; n < N; ++n) {
    a += sums[(n * C + c) * 2];
    b += sums[(n * C + c) * 2 + 1];
  }
  grad_w[c] = b;
  grad_b[c] = a;
}

template <typename T>
__global__ void grad_apply_kernel(const T* __restrict__ x, const T* __restrict__ g, T* __restrict__ gx,
                                  const acc_t<T>* __restrict__ mean, const acc_t<T>* __restrict__ rstd,
                                  const acc_t<T>* __restrict__ weight, const acc_t<T>* __restrict__ bias,
                                  const acc_t<T>* __restrict__ means, Layout layout, int64_t total, Activation act,
                                  acc_t<T> slope) {
  using A = acc_t<T>;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t group, c;
    layout.locate(i, group, c);
    const A w = param_or(weight, c, A(1));
    A gz, xhat;
    grad_terms(A(x[i]), A(g[i]), mean[group], rstd[group], w, param_or(bias, c, A(0)), act, slope, gz, xhat);
    gx[i] = static_cast<T>(rstd[group] * w * (gz - means[group * 2] - xhat * means[group * 2 + 1]));
  }
}

at::ScalarType acc_dtype(at::ScalarType dtype) { return dtype == at::kDouble ? at::kDouble : at::kFloat; }

at::Tensor kernel_layout(const at::Tensor& t, bool channels_last) {
  return channels_last ? t.movedim(1, -1).contiguous().movedim(-1, 1) : t.contiguous();
}

struct Problem {
  int64_t N, C, S;
  bool channels_last;
  Groups groups;
  at::Tensor x, weight, bias;  // x in kernel layout; weight, bias in acc dtype or undefined

  Problem(const at::Tensor& input, const std::optional<at::Tensor>& w, const std::optional<at::Tensor>& b,
          bool per_instance)
      : N(input.size(0)), C(input.size(1)), S(1), channels_last(is_channels_last_layout(input)),
        groups{input.size(0), input.size(1), per_instance} {
    for (int64_t d = 2; d < input.dim(); ++d) S *= input.size(d);
    x = kernel_layout(input, channels_last);
    const auto acc = acc_dtype(input.scalar_type());
    if (w.has_value() && w->defined()) weight = w->to(acc).contiguous();
    if (b.has_value() && b->defined()) bias = b->to(acc).contiguous();
    TORCH_CHECK_VALUE(!channels_last || (N <= 65535 && (C + kTileC - 1) / kTileC <= 65535),
                      "normalization on CUDA, channels last: N and C / 32 must be at most 65535, got ", N, " and ", C);
  }
  bool empty() const { return N * C == 0 || S == 0; }
  int64_t chunks() const { return (S + (channels_last ? kRowChunk : kChunk) - 1) / (channels_last ? kRowChunk : kChunk); }
  Layout layout() const { return {S, C, channels_last, groups}; }
  std::vector<int64_t> stats_shape() const {
    return groups.per_instance ? std::vector<int64_t>{N, C} : std::vector<int64_t>{C};
  }
  template <typename A>
  const A* weight_ptr() const { return weight.defined() ? weight.const_data_ptr<A>() : nullptr; }
  template <typename A>
  const A* bias_ptr() const { return bias.defined() ? bias.const_data_ptr<A>() : nullptr; }
  dim3 cl_grid() const {
    return dim3(static_cast<unsigned>(chunks()), static_cast<unsigned>(N), static_cast<unsigned>((C + kTileC - 1) / kTileC));
  }
};

#define VK_DISPATCH_FLOATS(dtype, name, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, name, __VA_ARGS__)

std::tuple<at::Tensor, at::Tensor, at::Tensor> norm_forward(const at::Tensor& input,
                                                            const std::optional<at::Tensor>& weight,
                                                            const std::optional<at::Tensor>& bias, double eps,
                                                            c10::string_view activation, double negative_slope,
                                                            bool per_instance) {
  check_instance_norm(input, weight, bias);
  const Activation act = parse_activation(activation);
  const c10::cuda::CUDAGuard guard(input.device());
  Problem p(input, weight, bias, per_instance);
  at::Tensor y = at::empty_like(p.x);
  const auto acc = acc_dtype(input.scalar_type());
  at::Tensor mean = at::zeros(p.stats_shape(), input.options().dtype(acc));
  at::Tensor rstd = at::full(p.stats_shape(), 1.0 / std::sqrt(eps), input.options().dtype(acc));
  if (p.empty()) return {y, mean, rstd};
  const int64_t planes = p.N * p.C, chunks = p.chunks();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor partial = at::empty({planes, chunks, 3}, input.options().dtype(acc));
  VK_DISPATCH_FLOATS(input.scalar_type(), "vision_kernels::norm_forward", [&] {
    using A = acc_t<scalar_t>;
    const scalar_t* x = p.x.const_data_ptr<scalar_t>();
    if (p.channels_last) {
      cl_stats_kernel<scalar_t><<<p.cl_grid(), dim3(kTileC, kTileR), 0, stream>>>(
          x, partial.mutable_data_ptr<A>(), p.S, p.C, chunks);
    } else {
      plane_stats_kernel<scalar_t><<<static_cast<unsigned>(planes * chunks), kThreads, 0, stream>>>(
          x, partial.mutable_data_ptr<A>(), p.S, chunks);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    finalize_stats_kernel<A><<<blocks_for(p.groups.count()), kThreads, 0, stream>>>(
        partial.const_data_ptr<A>(), mean.mutable_data_ptr<A>(), rstd.mutable_data_ptr<A>(), p.groups, chunks, eps);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    apply_kernel<scalar_t><<<blocks_for(y.numel()), kThreads, 0, stream>>>(
        x, y.mutable_data_ptr<scalar_t>(), mean.const_data_ptr<A>(), rstd.const_data_ptr<A>(), p.weight_ptr<A>(),
        p.bias_ptr<A>(), p.layout(), y.numel(), act, static_cast<A>(negative_slope));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {y, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> norm_backward(
    const at::Tensor& grad_out, const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
    c10::string_view activation, double negative_slope, bool per_instance) {
  check_instance_norm(input, weight, bias);
  check_norm_backward(grad_out, input, mean, rstd, per_instance);
  const Activation act = parse_activation(activation);
  const c10::cuda::CUDAGuard guard(input.device());
  Problem p(input, weight, bias, per_instance);
  const at::Tensor g = kernel_layout(grad_out, p.channels_last);
  at::Tensor grad_x = at::empty_like(p.x);
  const auto acc = acc_dtype(input.scalar_type());
  const int64_t planes = p.N * p.C, chunks = p.chunks();
  at::Tensor plane_sums = at::zeros({planes, 2}, input.options().dtype(acc));
  at::Tensor means = at::zeros({p.groups.count(), 2}, input.options().dtype(acc));
  at::Tensor grad_w = at::empty({p.C}, input.options().dtype(acc)), grad_b = at::empty({p.C}, input.options().dtype(acc));
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor m = mean.to(acc).contiguous(), r = rstd.to(acc).contiguous();
  VK_DISPATCH_FLOATS(input.scalar_type(), "vision_kernels::norm_backward", [&] {
    using A = acc_t<scalar_t>;
    const scalar_t* x = p.x.const_data_ptr<scalar_t>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const A slope = static_cast<A>(negative_slope);
    if (!p.empty()) {
      at::Tensor partial = at::empty({planes, chunks, 2}, input.options().dtype(acc));
      if (p.channels_last) {
        cl_grad_sums_kernel<scalar_t><<<p.cl_grid(), dim3(kTileC, kTileR), 0, stream>>>(
            x, gp, m.const_data_ptr<A>(), r.const_data_ptr<A>(), p.weight_ptr<A>(), p.bias_ptr<A>(),
            partial.mutable_data_ptr<A>(), p.S, p.C, chunks, p.groups, act, slope);
      } else {
        plane_grad_sums_kernel<scalar_t><<<static_cast<unsigned>(planes * chunks), kThreads, 0, stream>>>(
            x, gp, m.const_data_ptr<A>(), r.const_data_ptr<A>(), p.weight_ptr<A>(), p.bias_ptr<A>(),
            partial.mutable_data_ptr<A>(), p.S, p.C, chunks, p.groups, act, slope);
      }
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      finalize_grad_sums_kernel<A><<<blocks_for(planes), kThreads, 0, stream>>>(
          partial.const_data_ptr<A>(), plane_sums.mutable_data_ptr<A>(), planes, chunks);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      group_means_kernel<A><<<blocks_for(p.groups.count()), kThreads, 0, stream>>>(
          plane_sums.const_data_ptr<A>(), means.mutable_data_ptr<A>(), p.groups, p.S);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      grad_apply_kernel<scalar_t><<<blocks_for(grad_x.numel()), kThreads, 0, stream>>>(
          x, gp, grad_x.mutable_data_ptr<scalar_t>(), m.const_data_ptr<A>(), r.const_data_ptr<A>(),
          p.weight_ptr<A>(), p.bias_ptr<A>(), means.const_data_ptr<A>(), p.layout(), grad_x.numel(), act, slope);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (p.C > 0) {
      param_grads_kernel<A><<<blocks_for(p.C), kThreads, 0, stream>>>(
          plane_sums.const_data_ptr<A>(), grad_w.mutable_data_ptr<A>(), grad_b.mutable_data_ptr<A>(), p.N, p.C);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  auto param_grad = [&](const std::optional<at::Tensor>& param, const at::Tensor& grad) {
    return param.has_value() && param->defined() ? grad.to(param->scalar_type()) : at::empty({0}, input.options());
  };
  return {grad_x, param_grad(weight, grad_w), param_grad(bias, grad_b)};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm(const at::Tensor& input,
                                                             const std::optional<at::Tensor>& weight,
                                                             const std::optional<at::Tensor>& bias, double eps,
                                                             c10::string_view activation, double negative_slope) {
  return norm_forward(input, weight, bias, eps, activation, negative_slope, /*per_instance=*/true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_backward(
    const at::Tensor& grad_out, const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
    c10::string_view activation, double negative_slope) {
  return norm_backward(grad_out, input, weight, bias, mean, rstd, activation, negative_slope, true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act(const at::Tensor& input,
                                                              const std::optional<at::Tensor>& weight,
                                                              const std::optional<at::Tensor>& bias, double eps,
                                                              c10::string_view activation, double negative_slope) {
  return norm_forward(input, weight, bias, eps, activation, negative_slope, /*per_instance=*/false);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_backward(
    const at::Tensor& grad_out, const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
    c10::string_view activation, double negative_slope) {
  return norm_backward(grad_out, input, weight, bias, mean, rstd, activation, negative_slope, false);
}

}  // namespace vision_kernels::cuda
