// Codes files (`imsat encode`) and hex codes.
//
// Layout: "IMSATCDS" | u32 format version | u32 header length | JSON header {bits, rows,
// fingerprint, source, labels} | rows * bits / 8 code bytes | rows int32 labels (when labels is
// true) | u64 FNV-1a of every byte before it. Integers little-endian.
#include "query/codes_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/code_bits.h"

namespace imsat::query {
namespace {

constexpr char kMagic[8] = {'I', 'M', 'S', 'A', 'T', 'C', 'D', 'S'};

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_le(const std::string& in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + static_cast<size_t>(i)]))
         << (8 * i);
  }
  return v;
}

}  // namespace

Status write_codes_file(const std::string& path, const CodesFile& f) {
  IMSAT_RETURN_IF_ERROR(check_code_bits(f.bits));
  const size_t bytes = static_cast<size_t>(f.bits) / 8;
  if (f.codes.size() != f.rows * bytes) {
    return Status::invalid_argument("codes hold " + std::to_string(f.codes.size()) +
                                    " bytes, expected " + std::to_string(f.rows) + " x " +
                                    std::to_string(bytes));
  }
  if (!f.labels.empty() && f.labels.size() != f.rows) {
    return Status::invalid_argument("labels hold " + std::to_string(f.labels.size()) +
                                    " values for " + std::to_string(f.rows) + " rows");
  }
  nlohmann::json header = {{"bits", f.bits},
                           {"rows", f.rows},
                           {"fingerprint", f.fingerprint},
                           {"source", f.source},
                           {"labels", !f.labels.empty()}};
  if (!f.shard.empty()) {
    header["shard"] = f.shard;
    header["first_row"] = f.first_row;
  }
  const std::string h = header.dump();
  std::string out(kMagic, sizeof(kMagic));
  put_u32(out, kCodesFormatVersion);
  put_u32(out, static_cast<uint32_t>(h.size()));
  out += h;
  out.append(reinterpret_cast<const char*>(f.codes.data()), f.codes.size());
  for (int32_t l : f.labels) put_u32(out, static_cast<uint32_t>(l));
  put_u64(out, fnv1a64(out));

  return write_file_atomically(path, out);
}

bool is_codes_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[sizeof(kMagic)] = {};
  in.read(magic, sizeof(magic));
  return in.gcount() == sizeof(magic) && std::memcmp(magic, kMagic, sizeof(kMagic)) == 0;
}

Result<CodesFile> read_codes_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return Status::not_found(path + ": no such file");
    return Status::io_error(path + ": cannot read");
  }
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (all.size() < 16 || std::memcmp(all.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::corruption(path + ": not a codes file (bad magic)");
  }
  const uint32_t version = static_cast<uint32_t>(get_le(all, 8, 4));
  if (version != kCodesFormatVersion) {
    return Status::invalid_argument(path + ": codes file format version " +
                                    std::to_string(version) + ", this build reads version " +
                                    std::to_string(kCodesFormatVersion));
  }
  const size_t header_len = static_cast<size_t>(get_le(all, 12, 4));
  if (16 + header_len + 8 > all.size()) {
    return Status::corruption(path + ": truncated (header runs past the end)");
  }
  CodesFile f;
  bool labels = false;
  try {
    const nlohmann::json h = nlohmann::json::parse(all.substr(16, header_len));
    f.bits = h.at("bits").get<int>();
    f.rows = h.at("rows").get<size_t>();
    f.fingerprint = h.value("fingerprint", "");
    f.source = h.value("source", "");
    labels = h.value("labels", false);
    f.shard = h.value("shard", "");
    f.first_row = h.value("first_row", size_t{0});
  } catch (const std::exception& e) {
    return Status::corruption(path + ": damaged header: " + e.what());
  }
  if (!check_code_bits(f.bits).is_ok()) {
    return Status::corruption(path + ": header holds an invalid code length");
  }
  const size_t bytes = static_cast<size_t>(f.bits) / 8;
  const size_t body = f.rows * bytes + (labels ? f.rows * 4 : 0);
  if (f.rows > all.size() || 16 + header_len + body + 8 != all.size()) {
    return Status::corruption(path + ": truncated or padded: " + std::to_string(all.size()) +
                              " bytes for " + std::to_string(f.rows) + " codes");
  }
  const size_t end = all.size() - 8;
  if (get_le(all, end, 8) != fnv1a64(std::string_view(all).substr(0, end))) {
    return Status::corruption(path + ": checksum mismatch (the file is damaged)");
  }
  const size_t at = 16 + header_len;
  f.codes.assign(all.begin() + static_cast<std::ptrdiff_t>(at),
                 all.begin() + static_cast<std::ptrdiff_t>(at + f.rows * bytes));
  if (labels) {
    f.labels.resize(f.rows);
    for (size_t i = 0; i < f.rows; ++i) {
      f.labels[i] = static_cast<int32_t>(get_le(all, at + f.rows * bytes + 4 * i, 4));
    }
  }
  return f;
}

Result<CodesFile> read_codes_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(path + ": cannot read");
  char head[16];
  if (!in.read(head, 16) || std::memcmp(head, kMagic, sizeof(kMagic)) != 0) {
    return Status::corruption(path + ": not a codes file (bad magic)");
  }
  const std::string h16(head, 16);
  if (get_le(h16, 8, 4) != kCodesFormatVersion) {
    return Status::invalid_argument(path + ": a codes file of another format version");
  }
  const size_t header_len = static_cast<size_t>(get_le(h16, 12, 4));
  if (header_len > (1u << 20)) return Status::corruption(path + ": damaged header");
  std::string text(header_len, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(header_len))) {
    return Status::corruption(path + ": truncated header");
  }
  CodesFile f;
  try {
    const nlohmann::json h = nlohmann::json::parse(text);
    f.bits = h.at("bits").get<int>();
    f.rows = h.at("rows").get<size_t>();
    f.fingerprint = h.value("fingerprint", "");
    f.source = h.value("source", "");
    f.shard = h.value("shard", "");
    f.first_row = h.value("first_row", size_t{0});
  } catch (const std::exception& e) {
    return Status::corruption(path + ": damaged header: " + e.what());
  }
  return f;
}

std::string to_hex(const uint8_t* code, size_t bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes);
  for (size_t i = 0; i < bytes; ++i) {
    out.push_back(digits[code[i] >> 4]);
    out.push_back(digits[code[i] & 15]);
  }
  return out;
}

Result<std::vector<uint8_t>> parse_hex_code(const std::string& hex, int bits) {
  const size_t want = static_cast<size_t>(bits) / 4;
  if (hex.size() != want) {
    return Status::invalid_argument("hex code has " + std::to_string(hex.size()) + " digits; a " +
                                    std::to_string(bits) + "-bit code needs " +
                                    std::to_string(want));
  }
  auto value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<uint8_t> code(want / 2);
  for (size_t i = 0; i < want; i += 2) {
    const int hi = value(hex[i]), lo = value(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      const size_t bad = hi < 0 ? i : i + 1;
      return Status::invalid_argument("hex code has a non-hex character '" +
                                      std::string(1, hex[bad]) + "' at position " +
                                      std::to_string(bad));
    }
    code[i / 2] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return code;
}

}  // namespace imsat::query
