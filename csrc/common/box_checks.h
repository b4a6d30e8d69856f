#pragma once
// Argument checks shared by the CPU and CUDA entry points of the box ops. The Python layer
// (vision_kernels/ops/_checks.py) raises the same messages before dispatch; these keep a direct
// torch.ops.vision_kernels.* call just as safe.
#include <ATen/ATen.h>
#include <c10/util/string_view.h>

#include "common/box_math.h"

namespace vision_kernels {

inline BoxMode parse_box_mode(c10::string_view mode) {
  if (mode == "iou") return BoxMode::IoU;
  if (mode == "giou") return BoxMode::GIoU;
  if (mode == "diou") return BoxMode::DIoU;
  if (mode == "ciou") return BoxMode::CIoU;
  if (mode == "iof") return BoxMode::IoF;
  TORCH_CHECK_VALUE(false, "mode must be one of 'iou', 'giou', 'diou', 'ciou', 'iof', got '",
                    std::string(mode), "'");
}

inline void check_boxes(const at::Tensor& boxes, const char* name) {
  TORCH_CHECK_TYPE(at::isFloatingType(boxes.scalar_type()), name,
                   " must be a floating-point tensor (float16, bfloat16, float32 or float64), got ",
                   boxes.scalar_type());
  TORCH_CHECK_VALUE(boxes.dim() >= 1 && boxes.size(-1) == 4, name,
                    " must have shape [..., 4] (x1, y1, x2, y2), got ", boxes.sizes());
}

inline void check_same_device_dtype(const at::Tensor& a, const char* a_name, const at::Tensor& b,
                                    const char* b_name) {
  TORCH_CHECK_VALUE(a.device() == b.device(), a_name, " and ", b_name,
                    " must be on the same device, got ", a.device(), " and ", b.device());
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), a_name, " and ", b_name,
                   " must have the same dtype, got ", a.scalar_type(), " and ", b.scalar_type());
}

// Pairwise: [N,4] x [M,4] or [B,N,4] x [B,M,4]. Returns the output shape.
inline std::vector<int64_t> check_pairwise(const at::Tensor& boxes1, const at::Tensor& boxes2) {
  check_boxes(boxes1, "boxes1");
  check_boxes(boxes2, "boxes2");
  check_same_device_dtype(boxes1, "boxes1", boxes2, "boxes2");
  TORCH_CHECK_VALUE((boxes1.dim() == 2 || boxes1.dim() == 3) && boxes1.dim() == boxes2.dim(),
                    "boxes1 and boxes2 must both be [N, 4] and [M, 4], or both [B, N, 4] and "
                    "[B, M, 4]; got ", boxes1.sizes(), " and ", boxes2.sizes());
  if (boxes1.dim() == 2) return {boxes1.size(0), boxes2.size(0)};
  TORCH_CHECK_VALUE(boxes1.size(0) == boxes2.size(0),
                    "boxes1 and boxes2 must have the same batch size B, got ", boxes1.size(0),
                    " and ", boxes2.size(0));
  return {boxes1.size(0), boxes1.size(1), boxes2.size(1)};
}

inline void check_aligned(const at::Tensor& boxes1, const at::Tensor& boxes2) {
  check_boxes(boxes1, "boxes1");
  check_boxes(boxes2, "boxes2");
  check_same_device_dtype(boxes1, "boxes1", boxes2, "boxes2");
  TORCH_CHECK_VALUE(boxes1.sizes() == boxes2.sizes(),
                    "aligned boxes1 and boxes2 must have the same shape [..., N, 4], got ",
                    boxes1.sizes(), " and ", boxes2.sizes());
}

inline void check_aligned_grad(const at::Tensor& grad, const at::Tensor& boxes1) {
  TORCH_CHECK_VALUE(grad.sizes() == boxes1.sizes().slice(0, boxes1.dim() - 1),
                    "grad must have the shape of the aligned output ",
                    boxes1.sizes().slice(0, boxes1.dim() - 1), ", got ", grad.sizes());
  check_same_device_dtype(grad, "grad", boxes1, "boxes1");
}

inline void check_nms(const at::Tensor& boxes, const at::Tensor& scores) {
  check_boxes(boxes, "boxes");
  TORCH_CHECK_VALUE(boxes.dim() == 2, "boxes must have shape [N, 4], got ", boxes.sizes());
  TORCH_CHECK_VALUE(scores.dim() == 1 && scores.size(0) == boxes.size(0),
                    "scores must have shape [N] with N = boxes.shape[0] = ", boxes.size(0),
                    ", got ", scores.sizes());
  check_same_device_dtype(boxes, "boxes", scores, "scores");
}

inline void check_batched_nms(const at::Tensor& boxes, const at::Tensor& scores,
                              const at::Tensor& idxs) {
  check_nms(boxes, scores);
  TORCH_CHECK_VALUE(idxs.dim() == 1 && idxs.size(0) == boxes.size(0),
                    "idxs must have shape [N] with N = boxes.shape[0] = ", boxes.size(0), ", got ",
                    idxs.sizes());
  TORCH_CHECK_TYPE(at::isIntegralType(idxs.scalar_type(), /*includeBool=*/false),
                   "idxs must be an integer tensor of category indices, got ", idxs.scalar_type());
  TORCH_CHECK_VALUE(idxs.device() == boxes.device(),
                    "idxs and boxes must be on the same device, got ", idxs.device(), " and ",
                    boxes.device());
}

inline BoxFormat parse_box_format(c10::string_view fmt, const char* name) {
  if (fmt == "xyxy") return BoxFormat::XYXY;
  if (fmt == "xywh") return BoxFormat::XYWH;
  if (fmt == "cxcywh") return BoxFormat::CXCYWH;
  TORCH_CHECK_VALUE(false, name, " must be one of 'xyxy', 'xywh', 'cxcywh', got '",
                    std::string(fmt), "'");
}

}  // namespace vision_kernels
