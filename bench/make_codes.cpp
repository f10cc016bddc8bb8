// Writes a codes file (the format of `imsat encode`) of N random 64-bit codes with labels
// (row % 10), for timing `imsat index` from a codes file, or the I-th of S shards of such a
// dataset of N rows (as `imsat encode --shard I/S` would write them), for timing `imsat ingest`.
//
//   make_codes N OUT [SEED] [I/S]
#include <cstdio>
#include <random>
#include <string>

#include "query/codes_file.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: make_codes N OUT [SEED] [I/S]\n");
    return 2;
  }
  imsat::query::CodesFile f;
  f.bits = 64;
  const size_t total = std::stoull(argv[1]);
  uint64_t seed = argc > 3 ? std::stoull(argv[3]) : 1;
  f.rows = total;
  if (argc > 4) {
    const std::string shard = argv[4];
    const size_t slash = shard.find('/');
    const size_t i = std::stoull(shard.substr(0, slash)), s = std::stoull(shard.substr(slash + 1));
    if (slash == std::string::npos || s == 0 || i >= s) {
      std::fprintf(stderr, "make_codes: shard must be I/S with I < S\n");
      return 2;
    }
    f.first_row = total * i / s;
    f.rows = total * (i + 1) / s - f.first_row;
    f.shard = shard;
    seed = seed * 1000003 + i;
  }
  f.source = "make_codes (random)";
  std::mt19937_64 rng(seed);
  f.codes.resize(f.rows * 8);
  f.labels.resize(f.rows);
  for (size_t i = 0; i < f.rows; ++i) {
    const uint64_t c = rng();
    for (int b = 0; b < 8; ++b) f.codes[i * 8 + b] = static_cast<uint8_t>(c >> (8 * b));
    f.labels[i] = static_cast<int32_t>((f.first_row + i) % 10);
  }
  const imsat::Status s = imsat::query::write_codes_file(argv[2], f);
  if (!s.is_ok()) {
    std::fprintf(stderr, "make_codes: %s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}
