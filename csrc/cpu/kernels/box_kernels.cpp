// Hot loops of the CPU box ops. This file is compiled once per instruction set with
// -DVK_CPU_CAPABILITY=<name> and that set's flags (see CMakeLists.txt); everything in it lives in
// namespace vision_kernels::cpu::<name>. Keep it free of OpenMP and allocation: callers own both.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <limits>

#include "cpu/kernels/capability.h"

namespace vision_kernels::cpu::VK_CPU_CAPABILITY {

template <typename A>
struct TermArrays {
  A *x1, *y1, *x2, *y2, *area, *cx, *cy, *angle;
  explicit TermArrays(BoxTermsSoA soa) {
    A* base = static_cast<A*>(soa.data);
    const int64_t n = soa.count;
    x1 = base; y1 = base + n; x2 = base + 2 * n; y2 = base + 3 * n;
    area = base + 4 * n; cx = base + 5 * n; cy = base + 6 * n; angle = base + 7 * n;
  }
};

template <typename T>
void box_terms_impl(const T* boxes, BoxTermsSoA soa, int64_t begin, int64_t end) {
  using A = acc_t<T>;
  TermArrays<A> t(soa);
  for (int64_t i = begin; i < end; ++i) {
    const auto b = BoxTerms<A>::make(A(boxes[4 * i]), A(boxes[4 * i + 1]), A(boxes[4 * i + 2]),
                                     A(boxes[4 * i + 3]));
    t.x1[i] = b.x1; t.y1[i] = b.y1; t.x2[i] = b.x2; t.y2[i] = b.y2;
    t.area[i] = b.area; t.cx[i] = b.cx; t.cy[i] = b.cy; t.angle[i] = b.angle;
  }
}

void box_terms(c10::ScalarType dtype, const void* boxes, BoxTermsSoA terms, int64_t begin,
               int64_t end) {
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    box_terms_impl(static_cast<const T*>(boxes), terms, begin, end);
  });
}

// One output row: box `a` against `m` boxes whose terms start at `t` (already offset).
template <BoxMode M, typename T, typename A>
void pairwise_row(const BoxTerms<A>& a, const TermArrays<A>& t, int64_t offset, int64_t m, A eps,
                  T* __restrict__ out) {
  const A* __restrict__ x1 = t.x1 + offset;
  const A* __restrict__ y1 = t.y1 + offset;
  const A* __restrict__ x2 = t.x2 + offset;
  const A* __restrict__ y2 = t.y2 + offset;
  const A* __restrict__ area = t.area + offset;
  const A* __restrict__ cx = t.cx + offset;
  const A* __restrict__ cy = t.cy + offset;
  const A* __restrict__ angle = t.angle + offset;
  for (int64_t j = 0; j < m; ++j) {
    BoxTerms<A> b;
    b.x1 = x1[j]; b.y1 = y1[j]; b.x2 = x2[j]; b.y2 = y2[j];
    b.area = area[j]; b.cx = cx[j]; b.cy = cy[j]; b.angle = angle[j];
    out[j] = static_cast<T>(box_overlap<M>(a, b, eps));
  }
}

void pairwise_rows(const PairwiseArgs& args, int64_t begin, int64_t end) {
  dispatch_float(args.dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    dispatch_box_mode(args.mode, [&](auto mode) {
      const T* boxes1 = static_cast<const T*>(args.boxes1);
      T* out = static_cast<T*>(args.out);
      const TermArrays<A> terms(args.terms2);
      const A eps = static_cast<A>(args.eps);
      for (int64_t row = begin; row < end; ++row) {
        const T* b = boxes1 + 4 * row;
        const auto a = BoxTerms<A>::make(A(b[0]), A(b[1]), A(b[2]), A(b[3]));
        const int64_t batch = row / args.rows_per_batch;
        pairwise_row<decltype(mode)::value>(a, terms, batch * args.cols, args.cols, eps,
                                            out + row * args.cols);
      }
    });
  });
}

void aligned_forward(const AlignedArgs& args, void* out_ptr, int64_t begin, int64_t end) {
  dispatch_float(args.dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    dispatch_box_mode(args.mode, [&](auto mode) {
      const T* __restrict__ b1 = static_cast<const T*>(args.boxes1);
      const T* __restrict__ b2 = static_cast<const T*>(args.boxes2);
      T* __restrict__ out = static_cast<T*>(out_ptr);
      const A eps = static_cast<A>(args.eps);
      for (int64_t k = begin; k < end; ++k) {
        const auto a = BoxTerms<A>::make(A(b1[4 * k]), A(b1[4 * k + 1]), A(b1[4 * k + 2]),
                                         A(b1[4 * k + 3]));
        const auto b = BoxTerms<A>::make(A(b2[4 * k]), A(b2[4 * k + 1]), A(b2[4 * k + 2]),
                                         A(b2[4 * k + 3]));
        out[k] = static_cast<T>(box_overlap<decltype(mode)::value>(a, b, eps));
      }
    });
  });
}

void aligned_backward(const AlignedArgs& args, const void* grad_ptr, void* grad1_ptr,
                      void* grad2_ptr, int64_t begin, int64_t end) {
  dispatch_float(args.dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    dispatch_box_mode(args.mode, [&](auto mode) {
      const T* b1 = static_cast<const T*>(args.boxes1);
      const T* b2 = static_cast<const T*>(args.boxes2);
      const T* grad = static_cast<const T*>(grad_ptr);
      T* g1 = static_cast<T*>(grad1_ptr);
      T* g2 = static_cast<T*>(grad2_ptr);
      const A eps = static_cast<A>(args.eps);
      for (int64_t k = begin; k < end; ++k) {
        A a[4], b[4], ga[4], gb[4];
        for (int c = 0; c < 4; ++c) {
          a[c] = A(b1[4 * k + c]);
          b[c] = A(b2[4 * k + c]);
        }
        box_overlap_backward<decltype(mode)::value>(A(grad[k]), a, b, eps, ga, gb);
        for (int c = 0; c < 4; ++c) {
          g1[4 * k + c] = static_cast<T>(ga[c]);
          g2[4 * k + c] = static_cast<T>(gb[c]);
        }
      }
    });
  });
}

void convert(c10::ScalarType dtype, const void* in_ptr, void* out_ptr, BoxFormat from, BoxFormat to,
             int64_t begin, int64_t end) {
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    const T* in = static_cast<const T*>(in_ptr);
    T* out = static_cast<T*>(out_ptr);
    for (int64_t k = begin; k < end; ++k) {
      A src[4], dst[4];
      for (int c = 0; c < 4; ++c) src[c] = A(in[4 * k + c]);
      box_convert_one(src, dst, from, to);
      for (int c = 0; c < 4; ++c) out[4 * k + c] = static_cast<T>(dst[c]);
    }
  });
}

// The largest A `t` with (x > t) == (x > threshold) for every A x: torchvision's CPU kernel compares
// the float IoU with the double threshold, and this keeps that exact while comparing in A.
template <typename A>
A threshold_in(double threshold) {
  A t = static_cast<A>(threshold);
  if (static_cast<double>(t) > threshold) t = std::nextafter(t, -std::numeric_limits<A>::infinity());
  return t;
}

template <typename A>
int64_t nms_greedy_impl(NmsScratch s, int64_t n, double threshold, int64_t* kept) {
  A* __restrict__ x1 = static_cast<A*>(s.x1);
  A* __restrict__ y1 = static_cast<A*>(s.y1);
  A* __restrict__ x2 = static_cast<A*>(s.x2);
  A* __restrict__ y2 = static_cast<A*>(s.y2);
  A* __restrict__ area = static_cast<A*>(s.area);
  int64_t* __restrict__ pos = s.position;
  uint8_t* __restrict__ sup = s.suppressed;
  const A thr = threshold_in<A>(threshold);
  int64_t nkept = 0;
  for (int64_t head = 0; head < n; ++head) {
    kept[nkept++] = pos[head];
    const A ax1 = x1[head], ay1 = y1[head], ax2 = x2[head], ay2 = y2[head], aa = area[head];
    // Vectorized: the IoU of the kept box with every remaining candidate.
    int64_t nsup = 0;
    for (int64_t j = head + 1; j < n; ++j) {
      const uint8_t s_j = nms_iou(ax1, ay1, ax2, ay2, aa, x1[j], y1[j], x2[j], y2[j], area[j]) > thr;
      sup[j] = s_j;
      nsup += s_j;
    }
    if (nsup == 0) continue;
    // Compact the survivors so later rounds only look at live candidates.
    int64_t w = head + 1;
    for (int64_t j = head + 1; j < n; ++j) {
      if (!sup[j]) {
        x1[w] = x1[j]; y1[w] = y1[j]; x2[w] = x2[j]; y2[w] = y2[j];
        area[w] = area[j]; pos[w] = pos[j];
        ++w;
      }
    }
    n = w;
  }
  return nkept;
}

int64_t nms_greedy(c10::ScalarType dtype, NmsScratch scratch, int64_t n, double threshold,
                   int64_t* kept) {
  if (dtype == c10::ScalarType::Double) return nms_greedy_impl<double>(scratch, n, threshold, kept);
  return nms_greedy_impl<float>(scratch, n, threshold, kept);
}

}  // namespace vision_kernels::cpu::VK_CPU_CAPABILITY
