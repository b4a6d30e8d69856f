// CUDA non-maximum suppression with torchvision's semantics (kept indices in decreasing score,
// ties in index order, IoU > threshold compared in float as torchvision's CUDA kernel does).
//
// 1. Sort by score. 2. nms_mask_kernel: for every box i, a bitmask over the later boxes j that it
// would suppress (64 per word), computed in tiles of 64x64 boxes. For batched NMS boxes of another
// category never suppress. 3. gather_keep_kernel: one block walks the boxes in order, keeping a
// box unless an earlier kept box suppressed it, with the "removed" bits in shared memory; no copy
// of the mask to the host.
#include "common/box_checks.h"
#include "common/box_math.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"

namespace vision_kernels::cuda {
namespace {

constexpr int kBoxesPerWord = 64;
constexpr int kMaxSharedWords = 48 * 1024 / 8;  // removed bits of up to 393,216 boxes

template <typename A>
__global__ void nms_mask_kernel(int64_t n, A threshold, const A* __restrict__ boxes,
                                const int64_t* __restrict__ category,
                                unsigned long long* __restrict__ mask) {
  const int64_t row_block = blockIdx.y, col_block = blockIdx.x;
  if (row_block > col_block) return;  // only later boxes can be suppressed
  const int64_t words = (n + kBoxesPerWord - 1) / kBoxesPerWord;
  const int row_size = static_cast<int>(vk_min<int64_t>(n - row_block * kBoxesPerWord, kBoxesPerWord));
  const int col_size = static_cast<int>(vk_min<int64_t>(n - col_block * kBoxesPerWord, kBoxesPerWord));

  __shared__ A cols[kBoxesPerWord][5];
  __shared__ int64_t col_category[kBoxesPerWord];
  if (threadIdx.x < col_size) {
    const A* b = boxes + (col_block * kBoxesPerWord + threadIdx.x) * 4;
    cols[threadIdx.x][0] = b[0];
    cols[threadIdx.x][1] = b[1];
    cols[threadIdx.x][2] = b[2];
    cols[threadIdx.x][3] = b[3];
    cols[threadIdx.x][4] = (b[2] - b[0]) * (b[3] - b[1]);
    col_category[threadIdx.x] = category ? category[col_block * kBoxesPerWord + threadIdx.x] : 0;
  }
  __syncthreads();
  if (threadIdx.x >= row_size) return;
  const int64_t i = row_block * kBoxesPerWord + threadIdx.x;
  const A* a = boxes + i * 4;
  const A area = (a[2] - a[0]) * (a[3] - a[1]);
  const int64_t cat = category ? category[i] : 0;
  unsigned long long bits = 0;
  const int start = row_block == col_block ? threadIdx.x + 1 : 0;
  for (int c = start; c < col_size; ++c) {
    if (col_category[c] != cat) continue;
    if (nms_iou(a[0], a[1], a[2], a[3], area, cols[c][0], cols[c][1], cols[c][2], cols[c][3],
                cols[c][4]) > threshold) {
      bits |= 1ULL << c;
    }
  }
  mask[i * words + col_block] = bits;
}

// One block. keep[i] = box i (in score order) survives.
__global__ void gather_keep_kernel(int64_t n, const unsigned long long* __restrict__ mask,
                                   bool* __restrict__ keep) {
  extern __shared__ unsigned long long removed[];
  const int64_t words = (n + kBoxesPerWord - 1) / kBoxesPerWord;
  for (int64_t w = threadIdx.x; w < words; w += blockDim.x) removed[w] = 0;
  __syncthreads();
  for (int64_t word = 0; word < words; ++word) {
    unsigned long long removed_here = removed[word];
    __syncthreads();
    for (int bit = 0; bit < kBoxesPerWord; ++bit) {
      const int64_t i = word * kBoxesPerWord + bit;
      if (i >= n) break;
      if (removed_here & (1ULL << bit)) continue;
      if (threadIdx.x == 0) keep[i] = true;
      const unsigned long long* row = mask + i * words;
      for (int64_t w = word + threadIdx.x; w < words; w += blockDim.x) removed[w] |= row[w];
      __syncthreads();
      removed_here = removed[word];
      __syncthreads();
    }
  }
}

// The kept box indices, in score order. `categories` is undefined for plain NMS.
at::Tensor nms_impl(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& categories,
                    double iou_threshold) {
  const c10::cuda::CUDAGuard guard(boxes.device());
  const int64_t n = boxes.size(0);
  if (n == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  const auto order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const auto acc = boxes.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto sorted = boxes.index_select(0, order).to(acc).contiguous();
  at::Tensor sorted_category;
  if (categories.defined()) sorted_category = categories.to(at::kLong).index_select(0, order).contiguous();
  const int64_t words = (n + kBoxesPerWord - 1) / kBoxesPerWord;
  TORCH_CHECK_VALUE(words <= 65535, "nms on CUDA supports at most ", 65535 * kBoxesPerWord,
                    " boxes, got ", n);
  auto mask = at::empty({n * words}, boxes.options().dtype(at::kLong));
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const dim3 grid(static_cast<unsigned int>(words), static_cast<unsigned int>(words));
  // torchvision's CUDA kernel takes the threshold as a float.
  const float threshold = static_cast<float>(iou_threshold);
  auto* mask_ptr = reinterpret_cast<unsigned long long*>(mask.mutable_data_ptr<int64_t>());
  const int64_t* cat_ptr = categories.defined() ? sorted_category.const_data_ptr<int64_t>() : nullptr;
  if (acc == at::kDouble) {
    nms_mask_kernel<double><<<grid, kBoxesPerWord, 0, stream>>>(
        n, threshold, sorted.const_data_ptr<double>(), cat_ptr, mask_ptr);
  } else {
    nms_mask_kernel<float><<<grid, kBoxesPerWord, 0, stream>>>(
        n, threshold, sorted.const_data_ptr<float>(), cat_ptr, mask_ptr);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  auto keep = at::zeros({n}, boxes.options().dtype(at::kBool));
  if (words <= kMaxSharedWords) {
    gather_keep_kernel<<<1, std::min<int64_t>(words, 1024), words * sizeof(unsigned long long),
                         stream>>>(n, mask_ptr, keep.mutable_data_ptr<bool>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  } else {
    // Too many boxes for the removed bits to fit in shared memory: walk the mask on the host.
    const auto host_mask = mask.cpu();
    const auto* m = reinterpret_cast<const unsigned long long*>(host_mask.const_data_ptr<int64_t>());
    std::vector<unsigned long long> removed(words, 0);
    auto host_keep = at::zeros({n}, at::kBool);
    bool* k = host_keep.mutable_data_ptr<bool>();
    for (int64_t i = 0; i < n; ++i) {
      if (removed[i / kBoxesPerWord] & (1ULL << (i % kBoxesPerWord))) continue;
      k[i] = true;
      for (int64_t w = i / kBoxesPerWord; w < words; ++w) removed[w] |= m[i * words + w];
    }
    keep = host_keep.to(boxes.device());
  }
  return order.masked_select(keep);
}

}  // namespace

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  check_nms(boxes, scores);
  return nms_impl(boxes, scores, at::Tensor(), iou_threshold);
}

at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
                       double iou_threshold) {
  check_batched_nms(boxes, scores, idxs);
  return nms_impl(boxes, scores, idxs, iou_threshold);
}

}  // namespace vision_kernels::cuda
