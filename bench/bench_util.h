// What the benchmark programs share: end the program with a message naming it when a call fails.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "common/status.h"

namespace imsat::bench {

// The name error messages start with; each program sets it first thing in main.
inline const char* program = "bench";

inline void check(const Status& s) {
  if (!s.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", program, s.message().c_str());
    std::exit(1);
  }
}

template <typename T>
T take(Result<T> r) {
  check(r.status());
  return std::move(r).value();
}

}  // namespace imsat::bench
