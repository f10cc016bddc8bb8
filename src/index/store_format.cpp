// The code store's on-disk format: column family names, key encoding and the schema record.
//
// Column families (keys big-endian so that iteration follows ids):
//   schema   "schema" -> text lines (format_version, bits, tables, model_fingerprint);
//            "next_id" -> u64; "items" -> u64 live items (written in the same batch as every
//            change, checked at open); "bulk:<job>" -> u64 source items committed by a bulk load
//   codes    id (u64) -> code bytes | i32 tag (little-endian) | external key
//   meta     id -> metadata bytes (absent when empty)
//   keys     external key -> id
//   buckets  u8 table | u32 substring | u64 id -> ""   (the multi-index entries)
#include <sstream>

#include "index/store_internal.h"

namespace imsat::index {

const char* const kCfNames[] = {"default", "schema", "codes", "meta", "keys", "buckets"};

Status translate(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::ok();
  const std::string msg = what + ": " + s.ToString();
  if (s.IsNotFound()) return Status::not_found(msg);
  if (s.IsCorruption()) return Status::corruption(msg);
  if (s.IsInvalidArgument()) return Status::invalid_argument(msg);
  return Status::io_error(msg);
}

std::string be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) s[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
  return s;
}
std::string vector_key(uint64_t id) { return be64(id) + "v"; }
uint64_t from_be64(const rocksdb::Slice& s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}
std::string bucket_key(int table, uint32_t sub, uint64_t id) {
  std::string k(1, static_cast<char>(table));
  for (int i = 3; i >= 0; --i) k.push_back(static_cast<char>((sub >> (8 * i)) & 0xff));
  return k + be64(id);
}

std::string Schema::encode() const {
  std::ostringstream o;
  o << "format_version=" << format_version << "\nbits=" << bits << "\ntables=" << tables
    << "\nmodel_fingerprint=" << fingerprint << "\n";
  return o.str();
}

Result<Schema> Schema::decode(const std::string& text) {
  Schema s;
  s.format_version = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    try {
      if (k == "format_version") s.format_version = static_cast<uint32_t>(std::stoul(v));
      if (k == "bits") s.bits = std::stoi(v);
      if (k == "tables") s.tables = std::stoi(v);
    } catch (const std::exception&) {
      return Status::corruption("schema field " + k + " is not a number: '" + v + "'");
    }
    if (k == "model_fingerprint") s.fingerprint = v;
  }
  if (s.format_version == 0 || s.bits == 0 || s.tables == 0) {
    return Status::corruption("schema record is incomplete");
  }
  return s;
}

}  // namespace imsat::index
