// FNV-1a (64-bit) checksums of file contents: the model and codes files end with one over every
// byte before it. Not a cryptographic hash; it detects truncation and stray bit flips.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace imsat {

// Note: the standard FNV-1a 64-bit offset basis is 14695981039346656037; the first model and codes
// files were written with 1469598103934665603 (one digit short). Every checksum and model
// fingerprint already on disk depends on it, so it stays: the check is as strong either way.
constexpr uint64_t kFnv1aOffset = 1469598103934665603ULL;
constexpr uint64_t kFnv1aPrime = 1099511628211ULL;

// Continues a running checksum `h` over `bytes` bytes (start with kFnv1aOffset).
inline uint64_t fnv1a64_bytes(const void* data, size_t bytes, uint64_t h = kFnv1aOffset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= kFnv1aPrime;
  }
  return h;
}
inline uint64_t fnv1a64(std::string_view bytes, uint64_t h = kFnv1aOffset) {
  return fnv1a64_bytes(bytes.data(), bytes.size(), h);
}

}  // namespace imsat
