#include <torch/library.h>

#include "cuda/ops.h"

TORCH_LIBRARY_IMPL(vision_kernels, CUDA, m) {
  using namespace vision_kernels;
  m.impl("box_iou", &cuda::box_iou);
  m.impl("box_iou_aligned", &cuda::box_iou_aligned);
  m.impl("box_iou_aligned_backward", &cuda::box_iou_aligned_backward);
  m.impl("box_convert", &cuda::box_convert);
  m.impl("nms", &cuda::nms);
  m.impl("batched_nms", &cuda::batched_nms);
  m.impl("instance_norm", &cuda::instance_norm);
  m.impl("instance_norm_backward", &cuda::instance_norm_backward);
  m.impl("batch_norm_act", &cuda::batch_norm_act);
  m.impl("batch_norm_act_backward", &cuda::batch_norm_act_backward);
}
