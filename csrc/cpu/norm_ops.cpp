// CPU instance norm: argument checks, layout, and the split of the work into parallel tasks. The
// loops are in csrc/cpu/kernels/norm_kernels.cpp.
//
// Reductions run over fixed blocks (kBlock elements of a plane; channels last, rows of one image
// holding about kBlock elements) whose partial results are merged in block order. The blocks do
// not depend on the number of threads, so results are the same whatever the thread count and from
// run to run (no atomics anywhere). Contiguous input ([N, C, S] planes): with enough planes for
// every thread, a task takes whole planes, statistics then output, while the plane is in cache;
// with few large planes (batch 1, one 4096x4096 plane) the blocks of a plane run in parallel.
// Channels last ([N, S, C]): tasks are row blocks of one image, all channels at once.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/norm_checks.h"
#include "cpu/kernels.h"

namespace vision_kernels {
namespace {

constexpr int64_t kBlock = 65536;  // elements per reduction block

at::ScalarType acc_dtype(at::ScalarType dtype) { return dtype == at::kDouble ? at::kDouble : at::kFloat; }

// The layout the kernels read: planes contiguous, or channels last; anything else is copied.
at::Tensor kernel_layout(const at::Tensor& t, bool channels_last) {
  return channels_last ? t.movedim(1, -1).contiguous().movedim(-1, 1) : t.contiguous();
}

// `count` blocks of `len` items covering `items` (the last block may be shorter).
struct Blocks {
  int64_t count;
  int64_t len;
  int64_t begin(int64_t j) const { return j * len; }
  int64_t end(int64_t j, int64_t items) const { return std::min(items, (j + 1) * len); }
};

Blocks blocks_of(int64_t items, int64_t len) { return {std::max<int64_t>(1, (items + len - 1) / len), len}; }

// Everything a forward or backward needs about the input.
struct NormProblem {
  int64_t N, C, S;
  bool channels_last;
  at::Tensor x;
  at::Tensor weight_acc, bias_acc;  // undefined when absent
  cpu::NormArgs args;

  NormProblem(const at::Tensor& input, const std::optional<at::Tensor>& weight,
              const std::optional<at::Tensor>& bias, Activation act, double slope)
      : N(input.size(0)), C(input.size(1)), channels_last(is_channels_last_layout(input)) {
    S = 1;
    for (int64_t d = 2; d < input.dim(); ++d) S *= input.size(d);
    x = kernel_layout(input, channels_last);
    const auto acc = acc_dtype(input.scalar_type());
    if (weight.has_value() && weight->defined()) weight_acc = weight->to(acc).contiguous();
    if (bias.has_value() && bias->defined()) bias_acc = bias->to(acc).contiguous();
    args = {x.scalar_type(), C, S, x.const_data_ptr(),
            weight_acc.defined() ? weight_acc.const_data_ptr() : nullptr,
            bias_acc.defined() ? bias_acc.const_data_ptr() : nullptr, act, slope};
  }

  int64_t planes() const { return N * C; }
  Blocks plane_blocks() const { return blocks_of(S, kBlock); }
  Blocks row_blocks() const { return blocks_of(S, std::max<int64_t>(1, kBlock / std::max<int64_t>(C, 1))); }
  // Whole planes per task: enough planes to keep every thread busy, or planes of one block.
  bool whole_planes() const { return planes() >= 2 * at::get_num_threads() || plane_blocks().count == 1; }
  int64_t planes_per_task() const { return std::max<int64_t>(1, kBlock / std::max<int64_t>(S, 1)); }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_cpu(const at::Tensor& input,
                                                                 const std::optional<at::Tensor>& weight,
                                                                 const std::optional<at::Tensor>& bias,
                                                                 double eps, c10::string_view activation,
                                                                 double negative_slope) {
  check_instance_norm(input, weight, bias);
  NormProblem p(input, weight, bias, parse_activation(activation), negative_slope);
  at::Tensor y = at::empty_like(p.x);
  const auto stats_options = input.options().dtype(acc_dtype(input.scalar_type()));
  at::Tensor mean = at::empty({p.N, p.C}, stats_options), rstd = at::empty({p.N, p.C}, stats_options);
  const int64_t planes = p.planes();
  std::vector<double> mean_d(planes, 0.0), rstd_d(planes, 1.0 / std::sqrt(eps));
  auto finish = [&](int64_t plane, const MeanM2<double>& st) {
    mean_d[plane] = st.mean;
    rstd_d[plane] = 1.0 / std::sqrt((st.count > 0 ? std::max(st.m2 / st.count, 0.0) : 0.0) + eps);
  };
  const auto& k = cpu::cpu_kernels();
  void* out = y.mutable_data_ptr();

  if (planes > 0 && p.S > 0 && !p.channels_last) {
    const Blocks blocks = p.plane_blocks();
    auto stats_of_plane = [&](int64_t plane, const MeanM2<double>* partial) {
      MeanM2<double> st = partial[0];
      for (int64_t j = 1; j < blocks.count; ++j) st = merge(st, partial[j]);
      finish(plane, st);
    };
    if (p.whole_planes()) {
      at::parallel_for(0, planes, p.planes_per_task(), [&](int64_t b, int64_t e) {
        std::vector<MeanM2<double>> partial(blocks.count);
        for (int64_t plane = b; plane < e; ++plane) {
          for (int64_t j = 0; j < blocks.count; ++j) {
            partial[j] = k.norm_plane_stats(p.args, plane, blocks.begin(j), blocks.end(j, p.S));
          }
          stats_of_plane(plane, partial.data());
          k.norm_plane_apply(p.args, out, plane, 0, p.S, mean_d[plane], rstd_d[plane]);
        }
      });
    } else {
      std::vector<MeanM2<double>> partial(planes * blocks.count);
      at::parallel_for(0, planes * blocks.count, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          const int64_t j = t % blocks.count;
          partial[t] = k.norm_plane_stats(p.args, t / blocks.count, blocks.begin(j), blocks.end(j, p.S));
        }
      });
      for (int64_t plane = 0; plane < planes; ++plane) stats_of_plane(plane, &partial[plane * blocks.count]);
      at::parallel_for(0, planes * blocks.count, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          const int64_t plane = t / blocks.count, j = t % blocks.count;
          k.norm_plane_apply(p.args, out, plane, blocks.begin(j), blocks.end(j, p.S), mean_d[plane], rstd_d[plane]);
        }
      });
    }
  } else if (planes > 0 && p.S > 0) {
    const Blocks rows = p.row_blocks();
    const int64_t tasks = p.N * rows.count;
    std::vector<MeanM2<double>> partial(tasks * p.C);
    at::parallel_for(0, tasks, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t j = t % rows.count;
        k.norm_cl_stats(p.args, t / rows.count, rows.begin(j), rows.end(j, p.S), &partial[t * p.C]);
      }
    });
    for (int64_t n = 0; n < p.N; ++n) {
      for (int64_t c = 0; c < p.C; ++c) {
        MeanM2<double> st = partial[(n * rows.count) * p.C + c];
        for (int64_t j = 1; j < rows.count; ++j) st = merge(st, partial[(n * rows.count + j) * p.C + c]);
        finish(n * p.C + c, st);
      }
    }
    at::parallel_for(0, tasks, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t n = t / rows.count, j = t % rows.count;
        k.norm_cl_apply(p.args, out, n, rows.begin(j), rows.end(j, p.S), &mean_d[n * p.C], &rstd_d[n * p.C]);
      }
    });
  }
  if (planes > 0) {
    mean.copy_(at::from_blob(mean_d.data(), {p.N, p.C}, at::kDouble));
    rstd.copy_(at::from_blob(rstd_d.data(), {p.N, p.C}, at::kDouble));
  }
  return {y, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
    c10::string_view activation, double negative_slope) {
  check_instance_norm(input, weight, bias);
  check_instance_norm_backward(grad_out, input, mean, rstd);
  NormProblem p(input, weight, bias, parse_activation(activation), negative_slope);
  const at::Tensor g = kernel_layout(grad_out, p.channels_last);
  at::Tensor grad_x = at::empty_like(p.x);
  const int64_t planes = p.planes();
  std::vector<cpu::GradSums> sums(planes, {0.0, 0.0});
  const at::Tensor mean_t = mean.to(at::kDouble).contiguous(), rstd_t = rstd.to(at::kDouble).contiguous();
  const double* m = mean_t.const_data_ptr<double>();
  const double* r = rstd_t.const_data_ptr<double>();
  const void* gp = g.const_data_ptr();
  void* gx = grad_x.mutable_data_ptr();
  const auto& k = cpu::cpu_kernels();
  auto add = [](cpu::GradSums& total, const cpu::GradSums& part) {
    total.a += part.a;
    total.b += part.b;
  };

  if (planes > 0 && p.S > 0 && !p.channels_last) {
    const Blocks blocks = p.plane_blocks();
    auto sums_of_block = [&](int64_t plane, int64_t j) {
      return k.norm_plane_grad_sums(p.args, gp, plane, blocks.begin(j), blocks.end(j, p.S), m[plane], r[plane]);
    };
    if (p.whole_planes()) {
      at::parallel_for(0, planes, p.planes_per_task(), [&](int64_t b, int64_t e) {
        for (int64_t plane = b; plane < e; ++plane) {
          for (int64_t j = 0; j < blocks.count; ++j) add(sums[plane], sums_of_block(plane, j));
          k.norm_plane_grad_apply(p.args, gp, gx, plane, 0, p.S, m[plane], r[plane], sums[plane]);
        }
      });
    } else {
      std::vector<cpu::GradSums> partial(planes * blocks.count);
      at::parallel_for(0, planes * blocks.count, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) partial[t] = sums_of_block(t / blocks.count, t % blocks.count);
      });
      for (int64_t plane = 0; plane < planes; ++plane) {
        for (int64_t j = 0; j < blocks.count; ++j) add(sums[plane], partial[plane * blocks.count + j]);
      }
      at::parallel_for(0, planes * blocks.count, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          const int64_t plane = t / blocks.count, j = t % blocks.count;
          k.norm_plane_grad_apply(p.args, gp, gx, plane, blocks.begin(j), blocks.end(j, p.S), m[plane], r[plane],
                                  sums[plane]);
        }
      });
    }
  } else if (planes > 0 && p.S > 0) {
    const Blocks rows = p.row_blocks();
    const int64_t tasks = p.N * rows.count;
    std::vector<cpu::GradSums> partial(tasks * p.C);
    at::parallel_for(0, tasks, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t n = t / rows.count, j = t % rows.count;
        k.norm_cl_grad_sums(p.args, gp, n, rows.begin(j), rows.end(j, p.S), &m[n * p.C], &r[n * p.C],
                            &partial[t * p.C]);
      }
    });
    for (int64_t n = 0; n < p.N; ++n) {
      for (int64_t j = 0; j < rows.count; ++j) {
        for (int64_t c = 0; c < p.C; ++c) add(sums[n * p.C + c], partial[(n * rows.count + j) * p.C + c]);
      }
    }
    at::parallel_for(0, tasks, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t n = t / rows.count, j = t % rows.count;
        k.norm_cl_grad_apply(p.args, gp, gx, n, rows.begin(j), rows.end(j, p.S), &m[n * p.C], &r[n * p.C],
                             &sums[n * p.C]);
      }
    });
  }
  // Weight and bias gradients: the per-plane sums added over the batch in order.
  auto reduce_batch = [&](const std::optional<at::Tensor>& param, bool weight_sum) {
    if (!param.has_value() || !param->defined()) return at::empty({0}, input.options());
    std::vector<double> total(p.C, 0.0);
    for (int64_t n = 0; n < p.N; ++n) {
      for (int64_t c = 0; c < p.C; ++c) total[c] += weight_sum ? sums[n * p.C + c].b : sums[n * p.C + c].a;
    }
    // copy=true: from_blob wraps `total`, which dies here (.to(kDouble) alone would alias it).
    return at::from_blob(total.data(), {p.C}, at::kDouble).to(param->scalar_type(), false, /*copy=*/true);
  };
  return {grad_x, reduce_batch(weight, true), reduce_batch(bias, false)};
}

}  // namespace

TORCH_LIBRARY_IMPL(vision_kernels, CPU, m) {
  m.impl("instance_norm", &instance_norm_cpu);
  m.impl("instance_norm_backward", &instance_norm_backward_cpu);
}

}  // namespace vision_kernels
