// Picks the CPU kernels (csrc/cpu/kernels.h) for the best instruction set this CPU supports.
#include <cstdlib>
#include <string>

#include "cpu/kernels.h"

namespace vision_kernels::cpu {
namespace base { extern const CpuKernels kKernels; }
#ifdef VK_CPU_HAVE_AVX2
namespace avx2 { extern const CpuKernels kKernels; }
#endif
#ifdef VK_CPU_HAVE_AVX512
namespace avx512 { extern const CpuKernels kKernels; }
#endif

namespace {

const CpuKernels& select_kernels() {
  const char* env = std::getenv("VK_CPU_CAPABILITY");
  const std::string wanted = env ? env : "";  // empty: the best one
  [[maybe_unused]] bool has_avx2 = false, has_avx512 = false;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#endif
#ifdef VK_CPU_HAVE_AVX512
  if (has_avx512 && (wanted.empty() || wanted == "avx512")) return avx512::kKernels;
#endif
#ifdef VK_CPU_HAVE_AVX2
  if (has_avx2 && (wanted.empty() || wanted == "avx512" || wanted == "avx2")) return avx2::kKernels;
#endif
  return base::kKernels;
}

}  // namespace

const CpuKernels& cpu_kernels() {
  static const CpuKernels& kernels = select_kernels();
  return kernels;
}

}  // namespace vision_kernels::cpu
