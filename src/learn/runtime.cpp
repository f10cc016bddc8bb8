#include <dlfcn.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <string>

#include "learn/learn.h"

namespace imsat::learn {
namespace {

// A step of IMSAT training is dominated by small GEMMs (batch 250 x 400); on two cores a single
// LibTorch thread on top of OpenBLAS is fastest: two OpenMP threads contending with OpenBLAS's
// own pool ran a step about 3x slower (issue 3).
constexpr int kDefaultThreads = 1;

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
  if (n <= 0) n = kDefaultThreads;
  torch::set_num_threads(n);
  using SetThreadsFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(n);
  }
}

int num_threads() { return torch::get_num_threads(); }

std::string torch_version() { return TORCH_VERSION; }

}  // namespace imsat::learn
