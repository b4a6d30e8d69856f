// This instruction set's CpuKernels (see capability.h).
#include "cpu/kernels/capability.h"

#define VK_STRINGIFY_(x) #x
#define VK_STRINGIFY(x) VK_STRINGIFY_(x)

namespace vision_kernels::cpu::VK_CPU_CAPABILITY {

extern const CpuKernels kKernels;
const CpuKernels kKernels = {
    .capability = VK_STRINGIFY(VK_CPU_CAPABILITY),
    .box_terms = box_terms,
    .pairwise_rows = pairwise_rows,
    .aligned_forward = aligned_forward,
    .aligned_backward = aligned_backward,
    .convert = convert,
    .nms_greedy = nms_greedy,
    .norm_plane_stats = norm_plane_stats,
    .norm_plane_apply = norm_plane_apply,
    .norm_plane_grad_sums = norm_plane_grad_sums,
    .norm_plane_grad_apply = norm_plane_grad_apply,
    .norm_cl_stats = norm_cl_stats,
    .norm_cl_apply = norm_cl_apply,
    .norm_cl_grad_sums = norm_cl_grad_sums,
    .norm_cl_grad_apply = norm_cl_grad_apply,
};

}  // namespace vision_kernels::cpu::VK_CPU_CAPABILITY
