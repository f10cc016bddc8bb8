// Picks the Hamming kernel once per process from CPUID and the environment.
#include <cpuid.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "index/hamming_internal.h"

namespace imsat::index {
namespace {

// F16C (half-precision conversion), from CPUID leaf 1 (ECX bit 29): not every compiler's
// __builtin_cpu_supports knows its name. It needs the AVX register state, which the AVX2 check
// beside it covers.
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
}

// __builtin_cpu_supports also checks that the OS saves the wide register state (XCR0).
bool cpu_can_run(const HammingKernel& k) {
  if (&k == &internal::kAvx512Kernel) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  }
  if (&k == &internal::kAvx2Kernel) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") && cpu_has_f16c();
  }
  return true;
}

const HammingKernel& choose_kernel() {
  const char* force_scalar = std::getenv("IMSAT_FORCE_SCALAR");
  if (force_scalar != nullptr && std::string(force_scalar) == "1") return internal::kScalarKernel;
  if (const char* wanted = std::getenv("IMSAT_HAMMING_KERNEL")) {
    if (const HammingKernel* k = kernel_by_name(wanted)) return *k;
    std::fprintf(stderr,
                 "imsat: IMSAT_HAMMING_KERNEL=%s is unknown or unsupported by this CPU; "
                 "choosing automatically\n",
                 wanted);
  }
  return *available_kernels().back();
}

}  // namespace

std::vector<const HammingKernel*> available_kernels() {
  std::vector<const HammingKernel*> out;
  for (const HammingKernel* k :
       {&internal::kScalarKernel, &internal::kAvx2Kernel, &internal::kAvx512Kernel}) {
    if (cpu_can_run(*k)) out.push_back(k);
  }
  return out;
}

const HammingKernel* kernel_by_name(std::string_view name) {
  for (const HammingKernel* k : available_kernels()) {
    if (k->name == name) return k;
  }
  return nullptr;
}

const HammingKernel& active_kernel() {
  static const HammingKernel& chosen = choose_kernel();
  return chosen;
}

std::string_view active_kernel_name() { return active_kernel().name; }

}  // namespace imsat::index
