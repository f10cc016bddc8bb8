// Codes files made by `imsat encode`, and codes written as hex strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace imsat::query {

// Codes made by `imsat encode`: a header (magic "IMSATCDS", format version, JSON with bits,
// rows, model fingerprint, source) followed by the packed codes, optional labels, and a checksum.
struct CodesFile {
  int bits = 0;
  size_t rows = 0;
  std::string fingerprint;  // of the model that made them; may be empty
  std::string source;       // where the items came from
  std::vector<uint8_t> codes;
  std::vector<int32_t> labels;  // empty or one per row
  // A shard of a larger dataset (`imsat encode --shard I/N`): its rows are rows first_row... of
  // the whole, and `shard` names it ("I/N"; empty for a whole dataset).
  size_t first_row = 0;
  std::string shard;
};
constexpr uint32_t kCodesFormatVersion = 1;
// Writes atomically. Errors: InvalidArgument (sizes), IOError.
Status write_codes_file(const std::string& path, const CodesFile& file);
// Errors: NotFound, IOError, Corruption (bad magic, truncated, checksum), InvalidArgument (a
// different format version).
Result<CodesFile> read_codes_file(const std::string& path);
// The header only (bits, rows, fingerprint, source, shard, first_row; no codes), checked for
// magic and version: for checking many shard files before reading any of them whole.
Result<CodesFile> read_codes_header(const std::string& path);
// True when the file starts with the codes-file magic.
bool is_codes_file(const std::string& path);

// Lower-case hex of a packed code, byte 0 first.
std::string to_hex(const uint8_t* code, size_t bytes);
// Parses a hex code of exactly bits / 4 digits. Errors: InvalidArgument naming what was wrong.
Result<std::vector<uint8_t>> parse_hex_code(const std::string& hex, int bits);

}  // namespace imsat::query
