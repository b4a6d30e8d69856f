// CPU instance norm and batch norm (batch statistics) with a fused activation: argument checks,
// layout, and the split of the work into parallel tasks. The loops are in
// csrc/cpu/kernels/norm_kernels.cpp.
//
// Both normalize "groups" of values: a plane (sample, channel) for instance norm, all the planes of
// a channel for batch norm. Reductions run over fixed blocks (kBlock elements of a plane; channels
// last, rows of one image holding about kBlock elements) whose partial results are merged per group
// in a fixed order: the results do not depend on the number of threads and are the same from run to
// run (no atomics anywhere). Contiguous input ([N, C, S] planes): for instance norm with enough
// planes for every thread, a task takes whole planes, statistics then output, while the plane is in
// cache; otherwise blocks run in parallel for statistics, then again for the output. Channels last
// ([N, S, C]): tasks are row blocks of one image, all channels at once.
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

enum class Grouping { Instance, Channel };

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
  Grouping grouping;
  bool channels_last;
  at::Tensor x;
  at::Tensor weight_acc, bias_acc;  // undefined when absent
  cpu::NormArgs args;

  NormProblem(const at::Tensor& input, const std::optional<at::Tensor>& weight,
              const std::optional<at::Tensor>& bias, Activation act, double slope, Grouping grouping)
      : N(input.size(0)), C(input.size(1)), grouping(grouping), channels_last(is_channels_last_layout(input)) {
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

  bool empty() const { return N * C == 0 || S == 0; }
  int64_t planes() const { return N * C; }
  int64_t groups() const { return grouping == Grouping::Instance ? N * C : C; }
  int64_t group_of(int64_t plane) const { return grouping == Grouping::Instance ? plane : plane % C; }
  // Per-channel arrays of image n (channels last): its own for instance norm, shared for batch norm.
  int64_t image_offset(int64_t n) const { return grouping == Grouping::Instance ? n * C : 0; }
  double group_count() const { return static_cast<double>(grouping == Grouping::Instance ? S : N * S); }
  Blocks plane_blocks() const { return blocks_of(S, kBlock); }
  Blocks row_blocks() const { return blocks_of(S, std::max<int64_t>(1, kBlock / std::max<int64_t>(C, 1))); }
  // Whole planes per task (instance norm only): enough planes for every thread, or planes of one block.
  bool whole_planes() const {
    return grouping == Grouping::Instance &&
           (planes() >= 2 * at::get_num_threads() || plane_blocks().count == 1);
  }
  int64_t planes_per_task() const { return std::max<int64_t>(1, kBlock / std::max<int64_t>(S, 1)); }
  std::vector<int64_t> stats_shape() const {
    return grouping == Grouping::Instance ? std::vector<int64_t>{N, C} : std::vector<int64_t>{C};
  }
};

// Runs f(t) for t in [0, count) in parallel, one task per item.
template <typename F>
void parallel_items(int64_t count, F&& f) {
  at::parallel_for(0, count, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) f(t);
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> norm_forward(const at::Tensor& input,
                                                            const std::optional<at::Tensor>& weight,
                                                            const std::optional<at::Tensor>& bias, double eps,
                                                            c10::string_view activation, double negative_slope,
                                                            Grouping grouping) {
  check_instance_norm(input, weight, bias);
  NormProblem p(input, weight, bias, parse_activation(activation), negative_slope, grouping);
  at::Tensor y = at::empty_like(p.x);
  const auto stats_options = input.options().dtype(acc_dtype(input.scalar_type()));
  at::Tensor mean = at::empty(p.stats_shape(), stats_options), rstd = at::empty(p.stats_shape(), stats_options);
  const int64_t groups = p.groups();
  std::vector<double> mean_d(groups, 0.0), rstd_d(groups, 1.0 / std::sqrt(eps));
  // Merges the partial statistics of a group, given in order, into its mean and rstd.
  auto finish = [&](int64_t group, const MeanM2<double>* partial, int64_t count, int64_t stride) {
    MeanM2<double> st = partial[0];
    for (int64_t j = 1; j < count; ++j) st = merge(st, partial[j * stride]);
    mean_d[group] = st.mean;
    rstd_d[group] = 1.0 / std::sqrt((st.count > 0 ? std::max(st.m2 / st.count, 0.0) : 0.0) + eps);
  };
  const auto& k = cpu::cpu_kernels();
  void* out = y.mutable_data_ptr();

  if (!p.empty() && !p.channels_last) {
    const Blocks blocks = p.plane_blocks();
    if (p.whole_planes()) {
      at::parallel_for(0, p.planes(), p.planes_per_task(), [&](int64_t b, int64_t e) {
        std::vector<MeanM2<double>> partial(blocks.count);
        for (int64_t plane = b; plane < e; ++plane) {
          for (int64_t j = 0; j < blocks.count; ++j) {
            partial[j] = k.norm_plane_stats(p.args, plane, blocks.begin(j), blocks.end(j, p.S));
          }
          finish(plane, partial.data(), blocks.count, 1);
          k.norm_plane_apply(p.args, out, plane, 0, p.S, mean_d[plane], rstd_d[plane]);
        }
      });
    } else {
      std::vector<MeanM2<double>> partial(p.planes() * blocks.count);  // [N, C, blocks]
      parallel_items(p.planes() * blocks.count, [&](int64_t t) {
        const int64_t j = t % blocks.count;
        partial[t] = k.norm_plane_stats(p.args, t / blocks.count, blocks.begin(j), blocks.end(j, p.S));
      });
      if (grouping == Grouping::Instance) {
        for (int64_t plane = 0; plane < p.planes(); ++plane) {
          finish(plane, &partial[plane * blocks.count], blocks.count, 1);
        }
      } else {  // channel c: planes n * C + c for n in order, each plane's blocks in order
        std::vector<MeanM2<double>> ordered(p.N * blocks.count);
        for (int64_t c = 0; c < p.C; ++c) {
          for (int64_t n = 0; n < p.N; ++n) {
            std::copy_n(&partial[(n * p.C + c) * blocks.count], blocks.count, &ordered[n * blocks.count]);
          }
          finish(c, ordered.data(), p.N * blocks.count, 1);
        }
      }
      parallel_items(p.planes() * blocks.count, [&](int64_t t) {
        const int64_t plane = t / blocks.count, j = t % blocks.count, g = p.group_of(plane);
        k.norm_plane_apply(p.args, out, plane, blocks.begin(j), blocks.end(j, p.S), mean_d[g], rstd_d[g]);
      });
    }
  } else if (!p.empty()) {
    const Blocks rows = p.row_blocks();
    const int64_t tasks = p.N * rows.count;
    std::vector<MeanM2<double>> partial(tasks * p.C);  // [N, row blocks, C]
    parallel_items(tasks, [&](int64_t t) {
      const int64_t j = t % rows.count;
      k.norm_cl_stats(p.args, t / rows.count, rows.begin(j), rows.end(j, p.S), &partial[t * p.C]);
    });
    if (grouping == Grouping::Instance) {
      for (int64_t n = 0; n < p.N; ++n) {
        for (int64_t c = 0; c < p.C; ++c) finish(n * p.C + c, &partial[n * rows.count * p.C + c], rows.count, p.C);
      }
    } else {
      for (int64_t c = 0; c < p.C; ++c) finish(c, &partial[c], tasks, p.C);  // n-major, then row blocks
    }
    parallel_items(tasks, [&](int64_t t) {
      const int64_t n = t / rows.count, j = t % rows.count;
      k.norm_cl_apply(p.args, out, n, rows.begin(j), rows.end(j, p.S), &mean_d[p.image_offset(n)],
                      &rstd_d[p.image_offset(n)]);
    });
  }
  if (groups > 0) {
    mean.copy_(at::from_blob(mean_d.data(), p.stats_shape(), at::kDouble));
    rstd.copy_(at::from_blob(rstd_d.data(), p.stats_shape(), at::kDouble));
  }
  return {y, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> norm_backward(
    const at::Tensor& grad_out, const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
    c10::string_view activation, double negative_slope, Grouping grouping) {
  check_instance_norm(input, weight, bias);
  check_norm_backward(grad_out, input, mean, rstd, grouping == Grouping::Instance);
  NormProblem p(input, weight, bias, parse_activation(activation), negative_slope, grouping);
  const at::Tensor g = kernel_layout(grad_out, p.channels_last);
  at::Tensor grad_x = at::empty_like(p.x);
  const int64_t planes = p.planes();
  std::vector<cpu::GradSums> plane_sums(planes, {0.0, 0.0});
  std::vector<cpu::GradSums> means(p.groups(), {0.0, 0.0});  // per group, divided by its count
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
  // Group means from the per-plane sums (a plane's own for instance norm, summed over n for batch norm).
  auto group_means = [&]() {
    for (int64_t plane = 0; plane < planes; ++plane) add(means[p.group_of(plane)], plane_sums[plane]);
    for (auto& s : means) s = {s.a / p.group_count(), s.b / p.group_count()};
  };

  if (!p.empty() && !p.channels_last) {
    const Blocks blocks = p.plane_blocks();
    auto sums_of_block = [&](int64_t plane, int64_t j) {
      const int64_t grp = p.group_of(plane);
      return k.norm_plane_grad_sums(p.args, gp, plane, blocks.begin(j), blocks.end(j, p.S), m[grp], r[grp]);
    };
    if (p.whole_planes()) {
      at::parallel_for(0, planes, p.planes_per_task(), [&](int64_t b, int64_t e) {
        for (int64_t plane = b; plane < e; ++plane) {
          for (int64_t j = 0; j < blocks.count; ++j) add(plane_sums[plane], sums_of_block(plane, j));
          means[plane] = {plane_sums[plane].a / p.group_count(), plane_sums[plane].b / p.group_count()};
          k.norm_plane_grad_apply(p.args, gp, gx, plane, 0, p.S, m[plane], r[plane], means[plane]);
        }
      });
    } else {
      std::vector<cpu::GradSums> partial(planes * blocks.count);
      parallel_items(planes * blocks.count, [&](int64_t t) { partial[t] = sums_of_block(t / blocks.count, t % blocks.count); });
      for (int64_t plane = 0; plane < planes; ++plane) {
        for (int64_t j = 0; j < blocks.count; ++j) add(plane_sums[plane], partial[plane * blocks.count + j]);
      }
      group_means();
      parallel_items(planes * blocks.count, [&](int64_t t) {
        const int64_t plane = t / blocks.count, j = t % blocks.count, grp = p.group_of(plane);
        k.norm_plane_grad_apply(p.args, gp, gx, plane, blocks.begin(j), blocks.end(j, p.S), m[grp], r[grp],
                                means[grp]);
      });
    }
  } else if (!p.empty()) {
    const Blocks rows = p.row_blocks();
    const int64_t tasks = p.N * rows.count;
    std::vector<cpu::GradSums> partial(tasks * p.C);
    parallel_items(tasks, [&](int64_t t) {
      const int64_t n = t / rows.count, j = t % rows.count;
      k.norm_cl_grad_sums(p.args, gp, n, rows.begin(j), rows.end(j, p.S), &m[p.image_offset(n)],
                          &r[p.image_offset(n)], &partial[t * p.C]);
    });
    for (int64_t n = 0; n < p.N; ++n) {
      for (int64_t j = 0; j < rows.count; ++j) {
        for (int64_t c = 0; c < p.C; ++c) add(plane_sums[n * p.C + c], partial[(n * rows.count + j) * p.C + c]);
      }
    }
    group_means();
    parallel_items(tasks, [&](int64_t t) {
      const int64_t n = t / rows.count, j = t % rows.count, o = p.image_offset(n);
      k.norm_cl_grad_apply(p.args, gp, gx, n, rows.begin(j), rows.end(j, p.S), &m[o], &r[o], &means[o]);
    });
  }
  // Weight and bias gradients: the per-plane sums added over the batch in order.
  auto reduce_batch = [&](const std::optional<at::Tensor>& param, bool weight_sum) {
    if (!param.has_value() || !param->defined()) return at::empty({0}, input.options());
    std::vector<double> total(p.C, 0.0);
    for (int64_t n = 0; n < p.N; ++n) {
      for (int64_t c = 0; c < p.C; ++c) total[c] += weight_sum ? plane_sums[n * p.C + c].b : plane_sums[n * p.C + c].a;
    }
    // copy=true: from_blob wraps `total`, which dies here (.to(kDouble) alone would alias it).
    return at::from_blob(total.data(), {p.C}, at::kDouble).to(param->scalar_type(), false, /*copy=*/true);
  };
  return {grad_x, reduce_batch(weight, true), reduce_batch(bias, false)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_cpu(const at::Tensor& input,
                                                                 const std::optional<at::Tensor>& weight,
                                                                 const std::optional<at::Tensor>& bias,
                                                                 double eps, c10::string_view activation,
                                                                 double negative_slope) {
  return norm_forward(input, weight, bias, eps, activation, negative_slope, Grouping::Instance);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
    c10::string_view activation, double negative_slope) {
  return norm_backward(grad_out, input, weight, bias, mean, rstd, activation, negative_slope, Grouping::Instance);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_cpu(const at::Tensor& input,
                                                                  const std::optional<at::Tensor>& weight,
                                                                  const std::optional<at::Tensor>& bias,
                                                                  double eps, c10::string_view activation,
                                                                  double negative_slope) {
  return norm_forward(input, weight, bias, eps, activation, negative_slope, Grouping::Channel);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
    c10::string_view activation, double negative_slope) {
  return norm_backward(grad_out, input, weight, bias, mean, rstd, activation, negative_slope, Grouping::Channel);
}

}  // namespace

TORCH_LIBRARY_IMPL(vision_kernels, CPU, m) {
  m.impl("instance_norm", &instance_norm_cpu);
  m.impl("instance_norm_backward", &instance_norm_backward_cpu);
  m.impl("batch_norm_act", &batch_norm_act_cpu);
  m.impl("batch_norm_act_backward", &batch_norm_act_backward_cpu);
}

}  // namespace vision_kernels
