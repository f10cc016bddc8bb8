#include <dlfcn.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <string>
#include <thread>

#include "learn/learn_internal.h"

namespace imsat::learn {
namespace {

// A step of IMSAT training is dominated by small GEMMs (batch 250 x 400). Measured on the 2-core
// CI machine (bench/learn_bench, BM_ImsatVatStep): one LibTorch (OpenMP) thread with two
// OpenBLAS threads was fastest; two OpenMP threads on top of OpenBLAS's own pool ran a step
// 1.5x to 3x slower from contention.
constexpr int kDefaultTorchThreads = 1;
constexpr int kMaxDefaultBlasThreads = 2;

bool contains(const std::string& s, const char* needle) {
  return s.find(needle) != std::string::npos;
}

}  // namespace

BlasInfo linked_blas() {
  BlasInfo info;
  void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info where{};
  if (sgemm != nullptr && dladdr(sgemm, &where) != 0 && where.dli_fname != nullptr) {
    char resolved[4096];
    info.library_path = realpath(where.dli_fname, resolved) ? resolved : where.dli_fname;
  }
  using ConfigFn = char* (*)();
  if (auto fn = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    info.config = fn();
  }
  const std::string& p = info.library_path;
  if (contains(p, "openblas") || !info.config.empty()) {
    info.name = "openblas";
  } else if (contains(p, "mkl")) {
    info.name = "mkl";
  } else if (contains(p, "blis")) {
    info.name = "blis";
  } else if (contains(p, "/blas/") || contains(p, "libblas.so")) {
    info.name = "reference";
  } else {
    info.name = "unknown";
  }
  return info;
}

void set_num_threads(int n) {
  if (n <= 0) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    internal::set_thread_split(kDefaultTorchThreads, std::min(cores, kMaxDefaultBlasThreads));
  } else {
    internal::set_thread_split(n, n);
  }
}

namespace internal {

void set_thread_split(int torch_threads, int blas_threads) {
  torch::set_num_threads(torch_threads);
  using SetThreadsFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(blas_threads);
  }
}

}  // namespace internal

int num_threads() { return torch::get_num_threads(); }

std::string torch_version() { return TORCH_VERSION; }

bool cuda_available() { return torch::cuda::is_available(); }

}  // namespace imsat::learn
