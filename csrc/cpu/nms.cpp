// CPU non-maximum suppression with torchvision's semantics: candidates in order of decreasing
// score (stable, so ties keep index order), a box is dropped when its IoU with a kept box is
// > iou_threshold, and the kept indices come back in score order. The greedy loop
// (kernels.nms_greedy) compacts the survivors after each kept box, so its cost falls as boxes are
// suppressed, and its IoU loop vectorizes.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "common/box_checks.h"
#include "cpu/kernels.h"

namespace vision_kernels {
namespace {

// Candidate arrays in the accumulation type, plus scratch, for n boxes.
struct NmsBuffers {
  at::Tensor coords;      // [5, n] acc: x1, y1, x2, y2, area
  at::Tensor position;    // [n] int64
  at::Tensor suppressed;  // [n] uint8
  at::Tensor kept;        // [n] int64

  NmsBuffers(int64_t n, at::ScalarType dtype)
      : coords(at::empty({5, n}, at::TensorOptions().dtype(dtype == at::kDouble ? at::kDouble
                                                                                : at::kFloat))),
        position(at::empty({n}, at::kLong)),
        suppressed(at::empty({n}, at::kByte)),
        kept(at::empty({n}, at::kLong)) {}

  // The scratch view of slots [start, start + len).
  cpu::NmsScratch slice(int64_t start) {
    const int64_t n = coords.size(1);
    auto* base = static_cast<char*>(coords.mutable_data_ptr());
    const int64_t item = coords.element_size();
    auto at_row = [&](int64_t row) { return base + (row * n + start) * item; };
    return {at_row(0), at_row(1), at_row(2), at_row(3), at_row(4),
            position.mutable_data_ptr<int64_t>() + start,
            suppressed.mutable_data_ptr<uint8_t>() + start};
  }
};

// Copies boxes[source[s]] into slot s (for s in [0, n)) and records position[s] = label[s].
template <typename T, typename A>
void fill_slots(const at::Tensor& boxes, const int64_t* source, const int64_t* label,
                NmsBuffers& buf) {
  const int64_t n = buf.coords.size(1);
  const T* b = boxes.const_data_ptr<T>();
  A* c = buf.coords.mutable_data_ptr<A>();
  int64_t* pos = buf.position.mutable_data_ptr<int64_t>();
  at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) {
      const T* box = b + 4 * source[s];
      const A x1 = A(box[0]), y1 = A(box[1]), x2 = A(box[2]), y2 = A(box[3]);
      c[s] = x1; c[n + s] = y1; c[2 * n + s] = x2; c[3 * n + s] = y2;
      c[4 * n + s] = (x2 - x1) * (y2 - y1);
      pos[s] = label[s];
    }
  });
}

void fill_slots(const at::Tensor& boxes, const int64_t* source, const int64_t* label,
                NmsBuffers& buf) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, boxes.scalar_type(), "nms_fill", [&] {
    using A = acc_t<scalar_t>;
    fill_slots<scalar_t, A>(boxes, source, label, buf);
  });
}

// Indices that sort scores in decreasing order, ties in index order.
at::Tensor score_order(const at::Tensor& scores) {
  return std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
}

at::Tensor nms_cpu(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  check_nms(boxes, scores);
  const int64_t n = boxes.size(0);
  if (n == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  const auto b = boxes.contiguous();
  const auto order = score_order(scores);
  const int64_t* order_ptr = order.const_data_ptr<int64_t>();
  NmsBuffers buf(n, b.scalar_type());
  fill_slots(b, order_ptr, order_ptr, buf);  // positions are the original indices
  const int64_t nkept = cpu::cpu_kernels().nms_greedy(
      b.scalar_type(), buf.slice(0), n, iou_threshold, buf.kept.mutable_data_ptr<int64_t>());
  return buf.kept.narrow(0, 0, nkept).clone();
}

// NMS within each category, in parallel across categories. Keeps the boxes torchvision's
// batched_nms keeps (its per-class path exactly; its coordinate-offset path too, except where the
// offset costs float precision on large coordinates), in decreasing score with ties in index
// order. (torchvision's per-class path re-sorts with an unstable sort, so among tied scores its
// order can differ from ours; the kept set does not.)
at::Tensor batched_nms_cpu(const at::Tensor& boxes, const at::Tensor& scores,
                           const at::Tensor& idxs, double iou_threshold) {
  check_batched_nms(boxes, scores, idxs);
  const int64_t n = boxes.size(0);
  if (n == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  const auto b = boxes.contiguous();
  const auto order = score_order(scores);  // rank -> box index
  // Group the ranks by category, each group still in rank (score) order.
  const auto categories = idxs.to(at::kLong).index_select(0, order);
  const auto grouped = std::get<1>(categories.sort(/*stable=*/true, 0, /*descending=*/false));
  const auto grouped_boxes = order.index_select(0, grouped);  // slot -> box index
  const int64_t* rank_of_slot = grouped.const_data_ptr<int64_t>();
  NmsBuffers buf(n, b.scalar_type());
  fill_slots(b, grouped_boxes.const_data_ptr<int64_t>(), rank_of_slot, buf);

  const auto sorted_categories = categories.index_select(0, grouped);
  const int64_t* cat = sorted_categories.const_data_ptr<int64_t>();
  std::vector<int64_t> group_start{0};
  for (int64_t s = 1; s < n; ++s) {
    if (cat[s] != cat[s - 1]) group_start.push_back(s);
  }
  group_start.push_back(n);
  const int64_t groups = static_cast<int64_t>(group_start.size()) - 1;

  auto kept_rank = at::zeros({n}, at::kBool);
  bool* kept_flag = kept_rank.mutable_data_ptr<bool>();
  int64_t* kept = buf.kept.mutable_data_ptr<int64_t>();
  const auto& kernels = cpu::cpu_kernels();
  at::parallel_for(0, groups, 1, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      const int64_t start = group_start[g], len = group_start[g + 1] - start;
      const int64_t nkept = kernels.nms_greedy(b.scalar_type(), buf.slice(start), len,
                                               iou_threshold, kept + start);
      for (int64_t i = 0; i < nkept; ++i) kept_flag[kept[start + i]] = true;
    }
  });
  // Kept ranks in increasing order are the kept boxes in decreasing score.
  return order.masked_select(kept_rank);
}

}  // namespace

TORCH_LIBRARY_IMPL(vision_kernels, CPU, m) {
  m.impl("nms", &nms_cpu);
  m.impl("batched_nms", &batched_nms_cpu);
}

}  // namespace vision_kernels
