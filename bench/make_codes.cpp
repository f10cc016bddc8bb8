// Writes a codes file (the format of `imsat encode`) of N random 64-bit codes with labels
// (i % 10), for timing `imsat index` from a codes file (bench/scale.sh).
//
//   make_codes N OUT [SEED]
#include <cstdio>
#include <random>
#include <string>

#include "query/codes_file.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: make_codes N OUT [SEED]\n");
    return 2;
  }
  imsat::query::CodesFile f;
  f.bits = 64;
  f.rows = std::stoull(argv[1]);
  f.source = "make_codes (random)";
  std::mt19937_64 rng(argc > 3 ? std::stoull(argv[3]) : 1);
  f.codes.resize(f.rows * 8);
  f.labels.resize(f.rows);
  for (size_t i = 0; i < f.rows; ++i) {
    const uint64_t c = rng();
    for (int b = 0; b < 8; ++b) f.codes[i * 8 + b] = static_cast<uint8_t>(c >> (8 * b));
    f.labels[i] = static_cast<int32_t>(i % 10);
  }
  const imsat::Status s = imsat::query::write_codes_file(argv[2], f);
  if (!s.is_ok()) {
    std::fprintf(stderr, "make_codes: %s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}
