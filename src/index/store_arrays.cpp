// The persisted in-memory arrays (kArraysFile): the packed codes, tags, tombstones and slot-id
// runs, written when a store closes so that the next open reads them sequentially instead of
// rebuilding them record by record from RocksDB. Trusted only when everything agrees: the magic,
// the code length, the store's write generation and RocksDB's sequence number at close, the live
// item count, and a CRC-32 over the whole file. Anything else (missing, stale, damaged, or
// holding many tombstones) is reported as the reason and the arrays are rebuilt from RocksDB.
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/atomic_file.h"
#include "index/store_internal.h"

namespace imsat::index {
namespace {

constexpr char kMagic[8] = {'I', 'M', 'S', 'A', 'T', 'A', 'R', 'R'};
constexpr uint32_t kArraysVersion = 1;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t bits;
  uint64_t generation;
  uint64_t sequence;
  uint64_t slots;
  uint64_t live;
  uint64_t next_id;
  uint64_t runs;
};

// Buffered writes with a running CRC.
class Writer {
 public:
  explicit Writer(int fd) : fd_(fd) {}
  bool put(const void* data, size_t n) {
    crc_ = crc32_z(crc_, static_cast<const Bytef*>(data), n);
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  uLong crc() const { return crc_; }

 private:
  int fd_;
  uLong crc_ = crc32_z(0, nullptr, 0);
};

class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  bool get(void* data, size_t n) {
    char* p = static_cast<char*>(data);
    size_t left = n;
    while (left > 0) {
      const ssize_t r = ::read(fd_, p, left);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      p += r;
      left -= static_cast<size_t>(r);
    }
    crc_ = crc32_z(crc_, static_cast<const Bytef*>(data), n);
    return true;
  }
  uLong crc() const { return crc_; }

 private:
  int fd_;
  uLong crc_ = crc32_z(0, nullptr, 0);
};

std::string arrays_path(const std::string& store) {
  return (std::filesystem::path(store) / kArraysFile).string();
}

}  // namespace

Status CodeStore::Impl::save_arrays(const std::string& dir) const {
  std::shared_lock lock(state_mutex);
  const std::string& folder = dir.empty() ? path : dir;
  const std::string path_out = arrays_path(folder);
  const std::string tmp = path_out + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error(tmp + ": cannot create: " + std::strerror(errno));
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kArraysVersion;
  h.bits = static_cast<uint32_t>(schema.bits);
  h.generation = generation;
  h.sequence = db->GetLatestSequenceNumber();
  h.slots = codes.size();
  h.live = codes.live();
  h.next_id = next_id;
  h.runs = slot_ids.runs();
  Writer w(fd);
  bool ok = w.put(&h, sizeof(h)) &&
            w.put(codes.data(), codes.size() * codes.words() * sizeof(uint64_t)) &&
            w.put(codes.tags_data(), codes.size() * sizeof(int32_t)) &&
            w.put(codes.deleted_data(), codes.size()) &&
            w.put(slot_ids.run_slots().data(), slot_ids.runs() * sizeof(uint32_t)) &&
            w.put(slot_ids.run_offsets().data(), slot_ids.runs() * sizeof(uint64_t));
  const auto crc = static_cast<uint32_t>(w.crc());
  ok = ok && w.put(&crc, sizeof(crc));
  ok = ok && ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path_out.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::io_error(path_out + ": cannot write: " + reason);
  }
  return sync_directory(folder);
}

std::string CodeStore::Impl::load_arrays(uint64_t recorded_items) {
  const std::string file = arrays_path(path);
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "no arrays file";
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  Reader r(fd);
  Header h{};
  if (!r.get(&h, sizeof(h)) || std::memcmp(h.magic, kMagic, 8) != 0 ||
      h.version != kArraysVersion) {
    return "the arrays file is not one this build reads";
  }
  if (h.bits != static_cast<uint32_t>(schema.bits))
    return "the arrays file has another code length";
  if (h.generation != generation || h.sequence != db->GetLatestSequenceNumber()) {
    return "the arrays file is stale (written before the last changes)";
  }
  if (h.live != recorded_items || h.next_id != next_id || h.slots < h.live ||
      h.slots > (uint64_t{1} << 32) || h.runs > h.slots) {
    return "the arrays file disagrees with the store's item count";
  }
  if (h.slots - h.live > h.slots / 10 + 1000) {
    return "many deleted items: the arrays are rebuilt to drop them";
  }
  const size_t n = static_cast<size_t>(h.slots);
  CodeArray loaded(schema.bits);
  loaded.resize_for_load(n);
  std::vector<int32_t> tags(n);
  std::vector<uint8_t> deleted(n);
  std::vector<uint32_t> run_slots(static_cast<size_t>(h.runs));
  std::vector<uint64_t> run_offsets(static_cast<size_t>(h.runs));
  bool ok = r.get(loaded.mutable_data(), n * loaded.words() * sizeof(uint64_t)) &&
            r.get(tags.data(), n * sizeof(int32_t)) && r.get(deleted.data(), n) &&
            r.get(run_slots.data(), run_slots.size() * sizeof(uint32_t)) &&
            r.get(run_offsets.data(), run_offsets.size() * sizeof(uint64_t));
  const auto want = static_cast<uint32_t>(r.crc());
  uint32_t crc = 0;
  ok = ok && r.get(&crc, sizeof(crc));
  char extra;
  if (!ok || crc != want || ::read(fd, &extra, 1) != 0) {
    return "the arrays file is damaged (checksum or length)";
  }
  loaded.set_tags_and_tombstones(std::move(tags), std::move(deleted));
  if (loaded.live() != h.live) return "the arrays file's tombstones disagree with its header";
  codes = std::move(loaded);
  slot_ids.assign(std::move(run_slots), std::move(run_offsets), n);
  return "";
}

}  // namespace imsat::index
