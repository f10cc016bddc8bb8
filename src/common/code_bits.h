// The code lengths the whole project accepts: D bits, a multiple of 8 from 8 to 1024. Every
// public entry point that takes a code length checks it with check_code_bits.
#pragma once

#include <string>

#include "common/status.h"

namespace imsat {

constexpr int kMinCodeBits = 8;
constexpr int kMaxCodeBits = 1024;

// InvalidArgument, naming the value, unless bits is a multiple of 8 in [8, 1024].
inline Status check_code_bits(int bits) {
  if (bits < kMinCodeBits || bits > kMaxCodeBits || bits % 8 != 0) {
    return Status::invalid_argument(
        "code length must be a multiple of 8 from 8 to 1024 bits, got " + std::to_string(bits));
  }
  return Status::ok();
}

}  // namespace imsat
