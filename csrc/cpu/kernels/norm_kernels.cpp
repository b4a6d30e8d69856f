// Hot loops of the CPU instance norm, compiled once per instruction set like box_kernels.cpp.
//
// Statistics: per plane (or per channel over some rows), a sum in double, then the sum of squared
// deviations from that mean in double: two passes over data the caller keeps cache-sized, never
// E[x^2] - E[x]^2. Ranges merge with Chan's formula (norm_math.h). Elementwise work runs in the
// accumulation type A (float, or double for float64 inputs); activations are template parameters
// so every loop is branch-free and vectorizes.
#include <vector>

#include "cpu/kernels/capability.h"

namespace vision_kernels::cpu::VK_CPU_CAPABILITY {
namespace {

// The mean as hi + lo in A: x - hi - lo centres float data to float precision even when the mean
// is large next to the spread (x - hi is exact for x near hi), which float(mean) alone does not.
template <typename A>
struct SplitMean {
  A hi, lo;
  explicit SplitMean(double mean) : hi(static_cast<A>(mean)), lo(static_cast<A>(mean - static_cast<double>(hi))) {}
};

template <typename A>
A channel_param(const void* values, int64_t c, A absent) {
  return values ? static_cast<const A*>(values)[c] : absent;
}

// Calls f(std::integral_constant<Activation, ACT>{}) for the runtime activation.
template <typename F>
void dispatch_activation(Activation act, F&& f) {
  switch (act) {
    case Activation::ReLU: return f(std::integral_constant<Activation, Activation::ReLU>{});
    case Activation::LeakyReLU: return f(std::integral_constant<Activation, Activation::LeakyReLU>{});
    case Activation::Tanh: return f(std::integral_constant<Activation, Activation::Tanh>{});
    default: return f(std::integral_constant<Activation, Activation::None>{});
  }
}

// Calls f(T{}, A{}, std::integral_constant<Activation, ACT>{}).
template <typename F>
void dispatch_norm(const NormArgs& args, F&& f) {
  dispatch_float(args.dtype, [&](auto tag) {
    using T = decltype(tag);
    dispatch_activation(args.act, [&](auto act) { f(T{}, acc_t<T>{}, act); });
  });
}

// Reductions go through kLanes accumulators, lane j taking the elements i = j (mod kLanes), then
// add the lanes in a fixed order: the result depends on the values only. (A `#pragma omp simd
// reduction` peels a number of iterations that depends on the data's memory alignment, so the
// same values at another address would round differently.)
constexpr int64_t kLanes = 16;

template <int64_t K>
double add_lanes(const double (&acc)[K]) {
  double total = 0.0;
  for (int64_t j = 0; j < K; ++j) total += acc[j];
  return total;
}

// sum over i in [0, len) of f(i), in double.
template <typename F>
double lane_sum(int64_t len, F&& f) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
#pragma omp simd
    for (int64_t j = 0; j < kLanes; ++j) acc[j] += f(i + j);
  }
  for (int64_t j = 0; i + j < len; ++j) acc[j] += f(i + j);
  return add_lanes(acc);
}

template <typename T>
MeanM2<double> range_stats(const T* __restrict__ x, int64_t len) {
  const double sum = lane_sum(len, [&](int64_t i) { return static_cast<double>(static_cast<acc_t<T>>(x[i])); });
  const double mean = len > 0 ? sum / static_cast<double>(len) : 0.0;
  const double m2 = lane_sum(len, [&](int64_t i) {
    const double d = static_cast<double>(static_cast<acc_t<T>>(x[i])) - mean;
    return d * d;
  });
  return {static_cast<double>(len), mean, m2};
}

}  // namespace

MeanM2<double> norm_plane_stats(const NormArgs& args, int64_t plane, int64_t begin, int64_t end) {
  MeanM2<double> out{0, 0, 0};
  dispatch_float(args.dtype, [&](auto tag) {
    using T = decltype(tag);
    out = range_stats(static_cast<const T*>(args.x) + plane * args.plane_size + begin, end - begin);
  });
  return out;
}

void norm_plane_apply(const NormArgs& args, void* y_ptr, int64_t plane, int64_t begin, int64_t end, double mean,
                      double rstd) {
  dispatch_norm(args, [&](auto t_tag, auto a_tag, auto act) {
    using T = decltype(t_tag);
    using A = decltype(a_tag);
    const int64_t c = plane % args.channels, offset = plane * args.plane_size;
    const T* __restrict__ x = static_cast<const T*>(args.x) + offset;
    T* __restrict__ y = static_cast<T*>(y_ptr) + offset;
    const SplitMean<A> m(mean);
    const A scale = A(rstd) * channel_param<A>(args.weight, c, A(1));
    const A shift = channel_param<A>(args.bias, c, A(0)), slope = A(args.slope);
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      y[i] = static_cast<T>(activate((A(x[i]) - m.hi - m.lo) * scale + shift, decltype(act)::value, slope));
    }
  });
}

namespace {

// The backward of one plane at element i: g_z (the gradient through the activation) and xhat.
template <typename T, typename A, Activation ACT>
struct PlaneGrad {
  const T* __restrict__ x;
  const T* __restrict__ g;
  SplitMean<A> m;
  A r, w, b, slope;

  PlaneGrad(const NormArgs& args, const void* grad, int64_t plane, double mean, double rstd)
      : x(static_cast<const T*>(args.x) + plane * args.plane_size),
        g(static_cast<const T*>(grad) + plane * args.plane_size),
        m(mean),
        r(A(rstd)),
        w(channel_param<A>(args.weight, plane % args.channels, A(1))),
        b(channel_param<A>(args.bias, plane % args.channels, A(0))),
        slope(A(args.slope)) {}

  void at(int64_t i, A& gz, A& xhat) const {
    xhat = (A(x[i]) - m.hi - m.lo) * r;
    gz = A(g[i]) * activation_slope(xhat * w + b, ACT, slope);
  }
};

}  // namespace

GradSums norm_plane_grad_sums(const NormArgs& args, const void* grad_ptr, int64_t plane, int64_t begin,
                              int64_t end, double mean, double rstd) {
  GradSums out{0, 0};
  dispatch_norm(args, [&](auto t_tag, auto a_tag, auto act) {
    using T = decltype(t_tag);
    using A = decltype(a_tag);
    const PlaneGrad<T, A, decltype(act)::value> pg(args, grad_ptr, plane, mean, rstd);
    double acc_a[kLanes] = {}, acc_b[kLanes] = {};
    auto add = [&](int64_t i, int64_t j) {
      A gz, xhat;
      pg.at(i, gz, xhat);
      acc_a[j] += static_cast<double>(gz);
      acc_b[j] += static_cast<double>(gz * xhat);
    };
    int64_t i = begin;
    for (; i + kLanes <= end; i += kLanes) {
#pragma omp simd
      for (int64_t j = 0; j < kLanes; ++j) add(i + j, j);
    }
    for (int64_t j = 0; i + j < end; ++j) add(i + j, j);
    out = {add_lanes(acc_a), add_lanes(acc_b)};
  });
  return out;
}

void norm_plane_grad_apply(const NormArgs& args, const void* grad_ptr, void* grad_x_ptr, int64_t plane,
                           int64_t begin, int64_t end, double mean, double rstd, GradSums means) {
  dispatch_norm(args, [&](auto t_tag, auto a_tag, auto act) {
    using T = decltype(t_tag);
    using A = decltype(a_tag);
    const PlaneGrad<T, A, decltype(act)::value> pg(args, grad_ptr, plane, mean, rstd);
    T* __restrict__ gx = static_cast<T*>(grad_x_ptr) + plane * args.plane_size;
    const A k = pg.r * pg.w;
    const A mean_a = A(means.a), mean_b = A(means.b);
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      A gz, xhat;
      pg.at(i, gz, xhat);
      gx[i] = static_cast<T>(k * (gz - mean_a - xhat * mean_b));
    }
  });
}

// ---- channels last: image n is an [S, C] matrix --------------------------------------------------

void norm_cl_stats(const NormArgs& args, int64_t n, int64_t begin, int64_t end, MeanM2<double>* stats) {
  dispatch_float(args.dtype, [&](auto tag) {
    using T = decltype(tag);
    const int64_t C = args.channels;
    const T* x = static_cast<const T*>(args.x) + n * args.plane_size * C;
    std::vector<double> sum(C, 0.0), m2(C, 0.0);
    for (int64_t s = begin; s < end; ++s) {
      const T* __restrict__ row = x + s * C;
      double* __restrict__ acc = sum.data();
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) acc[c] += static_cast<double>(static_cast<acc_t<T>>(row[c]));
    }
    const double count = static_cast<double>(end - begin);
    for (int64_t c = 0; c < C; ++c) sum[c] = count > 0 ? sum[c] / count : 0.0;  // now the means
    for (int64_t s = begin; s < end; ++s) {
      const T* __restrict__ row = x + s * C;
      const double* __restrict__ mean = sum.data();
      double* __restrict__ acc = m2.data();
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const double d = static_cast<double>(static_cast<acc_t<T>>(row[c])) - mean[c];
        acc[c] += d * d;
      }
    }
    for (int64_t c = 0; c < C; ++c) stats[c] = {count, sum[c], m2[c]};
  });
}

void norm_cl_apply(const NormArgs& args, void* y_ptr, int64_t n, int64_t begin, int64_t end, const double* mean,
                   const double* rstd) {
  dispatch_norm(args, [&](auto t_tag, auto a_tag, auto act) {
    using T = decltype(t_tag);
    using A = decltype(a_tag);
    const int64_t C = args.channels, offset = n * args.plane_size * C;
    std::vector<A> m(C), m_lo(C), scale(C), shift(C);
    for (int64_t c = 0; c < C; ++c) {
      const SplitMean<A> split(mean[c]);
      m[c] = split.hi;
      m_lo[c] = split.lo;
      scale[c] = A(rstd[c]) * channel_param<A>(args.weight, c, A(1));
      shift[c] = channel_param<A>(args.bias, c, A(0));
    }
    const A slope = A(args.slope);
    const T* x = static_cast<const T*>(args.x) + offset;
    T* y = static_cast<T*>(y_ptr) + offset;
    for (int64_t s = begin; s < end; ++s) {
      const T* __restrict__ row = x + s * C;
      T* __restrict__ out = y + s * C;
      const A* __restrict__ mm = m.data();
      const A* __restrict__ ml = m_lo.data();
      const A* __restrict__ sc = scale.data();
      const A* __restrict__ sh = shift.data();
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        out[c] = static_cast<T>(activate((A(row[c]) - mm[c] - ml[c]) * sc[c] + sh[c], decltype(act)::value, slope));
      }
    }
  });
}

// Per-channel constants of the backward, in A.
template <typename A>
struct ChannelTerms {
  std::vector<A> mean, mean_lo, rstd, weight, bias;
  ChannelTerms(const NormArgs& args, const double* m, const double* r)
      : mean(args.channels), mean_lo(args.channels), rstd(args.channels), weight(args.channels),
        bias(args.channels) {
    for (int64_t c = 0; c < args.channels; ++c) {
      const SplitMean<A> split(m[c]);
      mean[c] = split.hi;
      mean_lo[c] = split.lo;
      rstd[c] = A(r[c]);
      weight[c] = channel_param<A>(args.weight, c, A(1));
      bias[c] = channel_param<A>(args.bias, c, A(0));
    }
  }
};

void norm_cl_grad_sums(const NormArgs& args, const void* grad_ptr, int64_t n, int64_t begin, int64_t end,
                       const double* mean, const double* rstd, GradSums* sums) {
  dispatch_norm(args, [&](auto t_tag, auto a_tag, auto act) {
    using T = decltype(t_tag);
    using A = decltype(a_tag);
    const int64_t C = args.channels, offset = n * args.plane_size * C;
    const ChannelTerms<A> terms(args, mean, rstd);
    const A slope = A(args.slope);
    std::vector<double> sum_a(C, 0.0), sum_b(C, 0.0);
    const T* x = static_cast<const T*>(args.x) + offset;
    const T* g = static_cast<const T*>(grad_ptr) + offset;
    for (int64_t s = begin; s < end; ++s) {
      const T* __restrict__ xr = x + s * C;
      const T* __restrict__ gr = g + s * C;
      double* __restrict__ sa = sum_a.data();
      double* __restrict__ sb = sum_b.data();
      const A* __restrict__ m = terms.mean.data();
      const A* __restrict__ ml = terms.mean_lo.data();
      const A* __restrict__ r = terms.rstd.data();
      const A* __restrict__ w = terms.weight.data();
      const A* __restrict__ b = terms.bias.data();
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const A xhat = (A(xr[c]) - m[c] - ml[c]) * r[c];
        const A gz = A(gr[c]) * activation_slope(xhat * w[c] + b[c], decltype(act)::value, slope);
        sa[c] += static_cast<double>(gz);
        sb[c] += static_cast<double>(gz * xhat);
      }
    }
    for (int64_t c = 0; c < C; ++c) sums[c] = {sum_a[c], sum_b[c]};
  });
}

void norm_cl_grad_apply(const NormArgs& args, const void* grad_ptr, void* grad_x_ptr, int64_t n, int64_t begin,
                        int64_t end, const double* mean, const double* rstd, const GradSums* means) {
  dispatch_norm(args, [&](auto t_tag, auto a_tag, auto act) {
    using T = decltype(t_tag);
    using A = decltype(a_tag);
    const int64_t C = args.channels, offset = n * args.plane_size * C;
    const ChannelTerms<A> terms(args, mean, rstd);
    const A slope = A(args.slope);
    std::vector<A> k(C), mean_a(C), mean_b(C);
    for (int64_t c = 0; c < C; ++c) {
      k[c] = terms.rstd[c] * terms.weight[c];
      mean_a[c] = A(means[c].a);
      mean_b[c] = A(means[c].b);
    }
    const T* x = static_cast<const T*>(args.x) + offset;
    const T* g = static_cast<const T*>(grad_ptr) + offset;
    T* gx = static_cast<T*>(grad_x_ptr) + offset;
    for (int64_t s = begin; s < end; ++s) {
      const T* __restrict__ xr = x + s * C;
      const T* __restrict__ gr = g + s * C;
      T* __restrict__ out = gx + s * C;
      const A* __restrict__ m = terms.mean.data();
      const A* __restrict__ ml = terms.mean_lo.data();
      const A* __restrict__ r = terms.rstd.data();
      const A* __restrict__ w = terms.weight.data();
      const A* __restrict__ b = terms.bias.data();
      const A* __restrict__ kk = k.data();
      const A* __restrict__ ma = mean_a.data();
      const A* __restrict__ mb = mean_b.data();
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const A xhat = (A(xr[c]) - m[c] - ml[c]) * r[c];
        const A gz = A(gr[c]) * activation_slope(xhat * w[c] + b[c], decltype(act)::value, slope);
        out[c] = static_cast<T>(kk[c] * (gz - ma[c] - xhat * mb[c]));
      }
    }
  });
}

}  // namespace vision_kernels::cpu::VK_CPU_CAPABILITY
