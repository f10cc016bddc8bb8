// imsat::learn — the public interface of src/learn.
//
// Nothing here exposes a LibTorch type: callers get plain vectors and packed code bytes.
#pragma once

#include <string>

#include "common/status.h"

namespace imsat::learn {

// The BLAS library that LibTorch's matrix products resolve to in this process.
struct BlasInfo {
  std::string name;          // "openblas", "mkl", "blis", "reference" or "unknown"
  std::string library_path;  // the shared object that defines sgemm_, when known
  std::string config;        // vendor configuration string (e.g. OpenBLAS's), when known
};
BlasInfo linked_blas();

// Sets LibTorch's intra-op threads and, when OpenBLAS is linked, OpenBLAS's threads.
// n <= 0 picks the project's tuned default (see kDefaultThreads in runtime.cpp).
void set_num_threads(int n);

// The number of intra-op threads LibTorch currently uses.
int num_threads();

// "1.13.1" and the like: the LibTorch version this library was built against.
std::string torch_version();

}  // namespace imsat::learn
