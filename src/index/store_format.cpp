// The code store's on-disk format: column family names, key encoding and the schema record.
//
// Column families (keys big-endian so that iteration follows ids):
//   schema   "schema" -> text lines (format_version, bits, tables, model_fingerprint, and metric
//            when the store was created with one);
//            "next_id" -> u64; "items" -> u64 live items (written in the same batch as every
//            change, checked at open); "bulk:<job>" -> u64 source items committed by a bulk load
//   codes    id (u64) -> code bytes | i32 tag (little-endian) | external key
//   meta     id -> metadata bytes (absent when empty)
//   keys     external key -> id
//   buckets  u8 table | u32 substring | u64 id -> ""   (the multi-index entries)
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/checksum.h"
#include "index/store_internal.h"

namespace imsat::index {

const char* const kCfNames[] = {"default", "schema", "codes", "meta", "keys", "buckets", "fields"};

Status translate(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::ok();
  std::string msg = what + ": " + s.ToString();
  // RocksDB glues a file name to some messages ("... to be an sstable/path/000030.sst").
  for (const char* glued : {"sstable/", "table/"}) {
    const size_t at = msg.find(glued);
    if (at != std::string::npos) msg.insert(at + std::string(glued).size() - 1, ": ");
  }
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
std::string thumbnail_key(uint64_t id) { return be64(id) + "t"; }

std::string terms_key(uint64_t id) { return be64(id) + "f"; }

std::string encode_terms(const std::vector<std::string>& terms) {
  std::string out;
  for (const std::string& t : terms) {
    const auto n = static_cast<uint32_t>(t.size());
    char len[4];
    std::memcpy(len, &n, 4);
    out.append(len, 4);
    out += t;
  }
  return out;
}

std::vector<std::string> decode_terms(const std::string& value) {
  std::vector<std::string> terms;
  size_t at = 0;
  while (at + 4 <= value.size()) {
    uint32_t n;
    std::memcpy(&n, value.data() + at, 4);
    at += 4;
    if (n > value.size() - at) break;  // damaged: what was read so far
    terms.push_back(value.substr(at, n));
    at += n;
  }
  return terms;
}
std::string encode_field_list(const std::vector<std::string>& fields) {
  return nlohmann::json(fields).dump();
}

Result<std::vector<std::string>> decode_field_list(const std::string& value) {
  std::vector<std::string> fields;
  if (!value.empty() && value.front() == '[') {
    const nlohmann::json j = nlohmann::json::parse(value, nullptr, false);
    if (j.is_discarded() || !j.is_array()) {
      return Status::corruption("the list of indexed fields is damaged");
    }
    for (const nlohmann::json& f : j) {
      if (!f.is_string()) return Status::corruption("the list of indexed fields is damaged");
      fields.push_back(f.get<std::string>());
    }
    return fields;
  }
  // The older form: one name per line (names never held a line break then).
  for (size_t at = 0; at < value.size();) {
    const size_t nl = value.find('\n', at);
    if (nl == std::string::npos) break;
    fields.push_back(value.substr(at, nl - at));
    at = nl + 1;
  }
  return fields;
}

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
  if (!persist_buckets) o << "buckets=0\n";
  if (!metric.empty()) o << "metric=" << metric << "\n";
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
    if (k == "buckets") s.persist_buckets = v != "0";
    if (k == "metric") s.metric = v;
  }
  if (s.format_version == 0 || s.bits == 0 || s.tables == 0) {
    return Status::corruption("schema record is incomplete");
  }
  return s;
}

std::optional<Watermark> read_watermark(const std::string& store_path) {
  const std::string file = store_path + "/" + kWatermarkFile;
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[32];
  const ssize_t n = ::pread(fd, buf, sizeof(buf), 0);
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof(buf)) || std::memcmp(buf + 24, "IMSATWM1", 8) != 0) {
    return std::nullopt;
  }
  uint64_t sum = 0;
  std::memcpy(&sum, buf + 16, 8);
  if (sum != fnv1a64_bytes(buf, 16)) return std::nullopt;
  Watermark w;
  std::memcpy(&w.generation, buf, 8);
  std::memcpy(&w.items, buf + 8, 8);
  return w;
}

Status write_watermark(const std::string& store_path, const Watermark& w) {
  char buf[32];
  std::memcpy(buf, &w.generation, 8);
  std::memcpy(buf + 8, &w.items, 8);
  const uint64_t sum = fnv1a64_bytes(buf, 16);
  std::memcpy(buf + 16, &sum, 8);
  std::memcpy(buf + 24, "IMSATWM1", 8);
  const std::string file = store_path + "/" + kWatermarkFile;
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error(file + ": cannot open: " + std::strerror(errno));
  const ssize_t n = ::pwrite(fd, buf, sizeof(buf), 0);
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof(buf))) {
    return Status::io_error(file + ": cannot write: " + std::strerror(errno));
  }
  return Status::ok();
}

Result<uint64_t> recorded_generation(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* schema) {
  std::string v;
  const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), schema, "generation", &v);
  if (s.IsNotFound()) return uint64_t{0};
  IMSAT_RETURN_IF_ERROR(translate(s, "reading the generation record"));
  if (v.size() != 8) return Status::corruption("the generation record is damaged");
  return from_be64(v);
}

Status check_watermark(const std::string& store_path, uint64_t recovered) {
  const std::optional<Watermark> w = read_watermark(store_path);
  if (!w || recovered >= w->generation) return Status::ok();
  std::string logs;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(store_path, ec)) {
    if (entry.path().extension() != ".log") continue;
    logs += (logs.empty() ? "" : ", ") + entry.path().filename().string() + " (" +
            std::to_string(std::filesystem::file_size(entry.path(), ec)) + " bytes)";
  }
  return Status::corruption(store_path + ": acknowledged writes are missing: write " +
                            std::to_string(w->generation) + " (" + std::to_string(w->items) +
                            " items) was acknowledged but the store recovers only up "
                            "to write " +
                            std::to_string(recovered) +
                            "; the write-ahead log (or the MANIFEST) is truncated, damaged or "
                            "deleted (" +
                            (logs.empty() ? std::string("no .log file is there") : logs) +
                            "); nothing was changed (imsat repair --db recovers what it can)");
}

}  // namespace imsat::index
