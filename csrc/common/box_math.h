#pragma once
// Box overlap formulas, forward and backward, for one pair of (x1, y1, x2, y2) boxes.
//
// Used by the CPU and CUDA kernels alike, so that every native backend evaluates the same
// expressions in the same order as the pure-torch reference (vision_kernels/reference/boxes.py)
// and torchvision. Division by zero is defined as 0 (`safe_div`): zero-area and degenerate boxes
// give finite values instead of NaN. The backward mirrors torch autograd through the reference:
// ties in min/max split the gradient in halves, clamp(min=0) passes it only above 0, and the CIoU
// trade-off `alpha` is a constant (no_grad), as in torchvision and the CIoU paper.
#include <cmath>
#include <type_traits>

#include "common/macros.h"
#include "common/numeric.h"

namespace vision_kernels {

enum class BoxMode : int { IoU = 0, GIoU = 1, DIoU = 2, CIoU = 3, IoF = 4 };

// 4 / pi^2, the CIoU aspect-ratio weight.
constexpr double kCiouScale = 0.405284734569351085775517852838911;
constexpr double kHalfPi = 1.57079632679489661923132169163975144;

template <typename T>
VK_HOST_DEVICE T safe_div(T num, T den) { return den != T(0) ? num / den : T(0); }
// Share of d max(p, q) that goes to p (torch.maximum splits ties in halves); 1 - share goes to q.
template <typename T>
VK_HOST_DEVICE T max_share(T p, T q) { return p > q ? T(1) : (p == q ? T(0.5) : T(0)); }
template <typename T>
VK_HOST_DEVICE T min_share(T p, T q) { return p < q ? T(1) : (p == q ? T(0.5) : T(0)); }

// Cephes' atanf without branches, so CPU loops that call it vectorize (libm's atanf does not):
// within 3 ulp of atanf, relative error <= 2.1e-7 over all floats.
VK_HOST_DEVICE float atan_branchless(float x) {
  const float ax = fabsf(x);
  const bool big = ax > 2.414213562373095f;   // tan(3 pi / 8)
  const bool mid = ax > 0.4142135623730950f;  // tan(pi / 8)
  const float t = big ? -1.0f / ax : (mid ? (ax - 1.0f) / (ax + 1.0f) : ax);
  const float y0 = big ? 1.5707963267948966f : (mid ? 0.7853981633974483f : 0.0f);
  const float z = t * t;
  const float p =
      (((8.05374449538e-2f * z - 1.38776856032e-1f) * z + 1.99777106478e-1f) * z - 3.33329491539e-1f) *
          z * t + t;
  const float r = y0 + p;
  return x < 0.0f ? -r : r;
}

VK_HOST_DEVICE float vk_atan(float x) {
#if defined(__CUDA_ARCH__)
  return atanf(x);
#else
  return atan_branchless(x);
#endif
}
VK_HOST_DEVICE double vk_atan(double x) { return atan(x); }

// atan(w / h), continued to h == 0 (+-pi/2, or 0 for a point) so zero-size boxes stay finite.
// Written with selects, not branches, so that CPU loops calling it vectorize.
template <typename T>
VK_HOST_DEVICE T aspect_angle(T w, T h) {
  const T angle = vk_atan(w / (h != T(0) ? h : T(1)));
  const T edge = w > T(0) ? T(kHalfPi) : (w < T(0) ? T(-kHalfPi) : T(0));
  return h != T(0) ? angle : edge;
}

// Adds the gradient of aspect_angle(w, h) = atan(w / h) times g to g_w and g_h (0 where h == 0).
template <typename T>
VK_HOST_DEVICE void aspect_angle_backward(T g, T w, T h, T& g_w, T& g_h) {
  if (h != T(0)) {
    const T r = w / h;
    const T g_r = g / (T(1) + r * r);
    g_w += g_r / h;
    g_h -= g_r * (r / h);
  }
}

// Per-box quantities, computed once per box by pairwise kernels.
template <typename T>
struct BoxTerms {
  T x1, y1, x2, y2;
  T area;    // (x2 - x1) * (y2 - y1), not clamped (torchvision's box_area)
  T cx, cy;  // centre, for DIoU/CIoU
  T angle;   // aspect_angle(w, h), for CIoU

  static VK_HOST_DEVICE BoxTerms make(T x1, T y1, T x2, T y2) {
    BoxTerms b;
    b.x1 = x1; b.y1 = y1; b.x2 = x2; b.y2 = y2;
    const T w = x2 - x1, h = y2 - y1;
    b.area = w * h;
    b.cx = (x1 + x2) / T(2);
    b.cy = (y1 + y2) / T(2);
    b.angle = aspect_angle(w, h);
    return b;
  }
};

template <BoxMode M, typename T>
VK_HOST_DEVICE T box_overlap(const BoxTerms<T>& a, const BoxTerms<T>& b, T eps) {
  const T iw = vk_max(vk_min(a.x2, b.x2) - vk_max(a.x1, b.x1), T(0));
  const T ih = vk_max(vk_min(a.y2, b.y2) - vk_max(a.y1, b.y1), T(0));
  const T inter = iw * ih;
  if constexpr (M == BoxMode::IoF) {
    return safe_div(inter, a.area);
  } else {
    const T uni = a.area + b.area - inter;
    const T iou = safe_div(inter, uni);
    if constexpr (M == BoxMode::IoU) return iou;
    // Enclosing box.
    const T cw = vk_max(vk_max(a.x2, b.x2) - vk_min(a.x1, b.x1), T(0));
    const T ch = vk_max(vk_max(a.y2, b.y2) - vk_min(a.y1, b.y1), T(0));
    if constexpr (M == BoxMode::GIoU) {
      const T c_area = cw * ch;
      return iou - safe_div(c_area - uni, c_area);
    } else {
      const T c2 = cw * cw + ch * ch + eps;
      const T dx = a.cx - b.cx, dy = a.cy - b.cy;
      const T diou = iou - safe_div(dx * dx + dy * dy, c2);
      if constexpr (M == BoxMode::DIoU) return diou;
      const T dang = a.angle - b.angle;
      const T v = T(kCiouScale) * (dang * dang);
      const T alpha = safe_div(v, T(1) - iou + v + eps);
      return diou - alpha * v;
    }
  }
}

// Gradient of box_overlap<M>(a, b) times `g` with respect to the 8 coordinates.
template <BoxMode M, typename T>
VK_HOST_DEVICE void box_overlap_backward(T g, const T a[4], const T b[4], T eps, T ga[4], T gb[4]) {
  const T ax1 = a[0], ay1 = a[1], ax2 = a[2], ay2 = a[3];
  const T bx1 = b[0], by1 = b[1], bx2 = b[2], by2 = b[3];
  const T aw = ax2 - ax1, ah = ay2 - ay1, bw = bx2 - bx1, bh = by2 - by1;
  const T area_a = aw * ah, area_b = bw * bh;
  const T iw_raw = vk_min(ax2, bx2) - vk_max(ax1, bx1);
  const T ih_raw = vk_min(ay2, by2) - vk_max(ay1, by1);
  const T iw = vk_max(iw_raw, T(0)), ih = vk_max(ih_raw, T(0));
  const T inter = iw * ih;

  T g_inter = 0, g_area_a = 0, g_area_b = 0;  // gradients of the intermediate values
  T g_cw = 0, g_ch = 0, g_dx = 0, g_dy = 0, g_ang_a = 0, g_ang_b = 0;
  T cw_raw = 0, ch_raw = 0, cw = 0, ch = 0;

  if constexpr (M == BoxMode::IoF) {
    if (area_a != T(0)) {
      g_inter += g / area_a;
      g_area_a -= g * ((inter / area_a) / area_a);
    }
  } else {
    const T uni = area_a + area_b - inter;
    const T iou = safe_div(inter, uni);
    T g_uni = 0;
    if constexpr (M != BoxMode::IoU) {
      cw_raw = vk_max(ax2, bx2) - vk_min(ax1, bx1);
      ch_raw = vk_max(ay2, by2) - vk_min(ay1, by1);
      cw = vk_max(cw_raw, T(0));
      ch = vk_max(ch_raw, T(0));
    }
    if constexpr (M == BoxMode::GIoU) {
      // out = iou - t, t = (c_area - uni) / c_area
      const T c_area = cw * ch;
      if (c_area != T(0)) {
        const T t = (c_area - uni) / c_area;
        const T g_num = -g / c_area;
        const T g_c_area = g_num + g * (t / c_area);
        g_uni -= g_num;
        g_cw += g_c_area * ch;
        g_ch += g_c_area * cw;
      }
    }
    if constexpr (M == BoxMode::DIoU || M == BoxMode::CIoU) {
      // out = iou - rho2 / c2 [- alpha * v]
      const T c2 = cw * cw + ch * ch + eps;
      const T dx = (ax1 + ax2) / T(2) - (bx1 + bx2) / T(2);
      const T dy = (ay1 + ay2) / T(2) - (by1 + by2) / T(2);
      if (c2 != T(0)) {
        const T rho2 = dx * dx + dy * dy;
        const T g_rho2 = -g / c2;
        const T g_c2 = g * ((rho2 / c2) / c2);
        g_cw += g_c2 * (T(2) * cw);
        g_ch += g_c2 * (T(2) * ch);
        g_dx = g_rho2 * (T(2) * dx);
        g_dy = g_rho2 * (T(2) * dy);
      }
      if constexpr (M == BoxMode::CIoU) {
        const T dang = aspect_angle(aw, ah) - aspect_angle(bw, bh);
        const T v = T(kCiouScale) * (dang * dang);
        const T alpha = safe_div(v, T(1) - iou + v + eps);
        const T g_dang = (-g * alpha) * T(kCiouScale) * (T(2) * dang);
        g_ang_a = g_dang;
        g_ang_b = -g_dang;
      }
    }
    if (uni != T(0)) {  // iou = inter / uni
      g_inter += g / uni;
      g_uni -= g * ((inter / uni) / uni);
    }
    g_area_a += g_uni;
    g_area_b += g_uni;
    g_inter -= g_uni;
  }

  T gax1 = 0, gay1 = 0, gax2 = 0, gay2 = 0, gbx1 = 0, gby1 = 0, gbx2 = 0, gby2 = 0;
  // Intersection: iw = clamp(min(ax2, bx2) - max(ax1, bx1), 0).
  const T g_iw = iw_raw > T(0) ? g_inter * ih : T(0);
  const T g_ih = ih_raw > T(0) ? g_inter * iw : T(0);
  {
    const T s2 = min_share(ax2, bx2), s1 = max_share(ax1, bx1);
    gax2 += g_iw * s2; gbx2 += g_iw * (T(1) - s2);
    gax1 -= g_iw * s1; gbx1 -= g_iw * (T(1) - s1);
    const T t2 = min_share(ay2, by2), t1 = max_share(ay1, by1);
    gay2 += g_ih * t2; gby2 += g_ih * (T(1) - t2);
    gay1 -= g_ih * t1; gby1 -= g_ih * (T(1) - t1);
  }
  // Enclosing box: cw = clamp(max(ax2, bx2) - min(ax1, bx1), 0).
  if constexpr (M != BoxMode::IoU && M != BoxMode::IoF) {
    const T g_cwr = cw_raw > T(0) ? g_cw : T(0);
    const T g_chr = ch_raw > T(0) ? g_ch : T(0);
    const T s2 = max_share(ax2, bx2), s1 = min_share(ax1, bx1);
    gax2 += g_cwr * s2; gbx2 += g_cwr * (T(1) - s2);
    gax1 -= g_cwr * s1; gbx1 -= g_cwr * (T(1) - s1);
    const T t2 = max_share(ay2, by2), t1 = min_share(ay1, by1);
    gay2 += g_chr * t2; gby2 += g_chr * (T(1) - t2);
    gay1 -= g_chr * t1; gby1 -= g_chr * (T(1) - t1);
  }
  // Centres: dx = (ax1 + ax2) / 2 - (bx1 + bx2) / 2.
  gax1 += g_dx / T(2); gax2 += g_dx / T(2); gbx1 -= g_dx / T(2); gbx2 -= g_dx / T(2);
  gay1 += g_dy / T(2); gay2 += g_dy / T(2); gby1 -= g_dy / T(2); gby2 -= g_dy / T(2);
  // Areas and aspect angles, through w = x2 - x1 and h = y2 - y1.
  T g_aw = g_area_a * ah, g_ah = g_area_a * aw;
  T g_bw = g_area_b * bh, g_bh = g_area_b * bw;
  aspect_angle_backward(g_ang_a, aw, ah, g_aw, g_ah);
  aspect_angle_backward(g_ang_b, bw, bh, g_bw, g_bh);
  gax2 += g_aw; gax1 -= g_aw; gay2 += g_ah; gay1 -= g_ah;
  gbx2 += g_bw; gbx1 -= g_bw; gby2 += g_bh; gby1 -= g_bh;

  ga[0] = gax1; ga[1] = gay1; ga[2] = gax2; ga[3] = gay2;
  gb[0] = gbx1; gb[1] = gby1; gb[2] = gbx2; gb[3] = gby2;
}

// Calls f(std::integral_constant<BoxMode, M>{}) for the runtime mode, so kernels are compiled
// once per mode with a branch-free inner loop.
template <typename F>
decltype(auto) dispatch_box_mode(BoxMode mode, F&& f) {
  switch (mode) {
    case BoxMode::IoU: return f(std::integral_constant<BoxMode, BoxMode::IoU>{});
    case BoxMode::GIoU: return f(std::integral_constant<BoxMode, BoxMode::GIoU>{});
    case BoxMode::DIoU: return f(std::integral_constant<BoxMode, BoxMode::DIoU>{});
    case BoxMode::CIoU: return f(std::integral_constant<BoxMode, BoxMode::CIoU>{});
    default: return f(std::integral_constant<BoxMode, BoxMode::IoF>{});
  }
}

// IoU as torchvision's NMS computes it (no zero guard: NaN compares false, so never suppresses).
template <typename T>
VK_HOST_DEVICE T nms_iou(T ax1, T ay1, T ax2, T ay2, T area_a, T bx1, T by1, T bx2, T by2, T area_b) {
  const T w = vk_max(vk_min(ax2, bx2) - vk_max(ax1, bx1), T(0));
  const T h = vk_max(vk_min(ay2, by2) - vk_max(ay1, by1), T(0));
  const T inter = w * h;
  return inter / (area_a + area_b - inter);
}

}  // namespace vision_kernels

namespace vision_kernels {

enum class BoxFormat : int { XYXY = 0, XYWH = 1, CXCYWH = 2 };

// Converts one box between formats, always through xyxy as torchvision.ops.box_convert does, so
// results match it bit for bit in float32/float64.
template <typename T>
VK_HOST_DEVICE void box_convert_one(const T in[4], T out[4], BoxFormat from, BoxFormat to) {
  if (from == to) {
    out[0] = in[0]; out[1] = in[1]; out[2] = in[2]; out[3] = in[3];
    return;
  }
  T x1 = in[0], y1 = in[1], x2 = in[2], y2 = in[3];
  if (from == BoxFormat::XYWH) {
    x2 = in[0] + in[2];
    y2 = in[1] + in[3];
  } else if (from == BoxFormat::CXCYWH) {
    x1 = in[0] - T(0.5) * in[2];
    y1 = in[1] - T(0.5) * in[3];
    x2 = in[0] + T(0.5) * in[2];
    y2 = in[1] + T(0.5) * in[3];
  }
  if (to == BoxFormat::XYXY) {
    out[0] = x1; out[1] = y1; out[2] = x2; out[3] = y2;
  } else if (to == BoxFormat::XYWH) {
    out[0] = x1; out[1] = y1; out[2] = x2 - x1; out[3] = y2 - y1;
  } else {
    out[0] = (x1 + x2) / T(2); out[1] = (y1 + y2) / T(2); out[2] = x2 - x1; out[3] = y2 - y1;
  }
}

}  // namespace vision_kernels
