// imsat::index::CodeArray — codes in memory: one contiguous, 64-byte-aligned array of codes
// padded to 64-bit words (structure of arrays, so a scan streams memory), with a small integer tag
// per item (e.g. a label) and tombstones.
//
// Codes are D bits, D a multiple of 8 from 8 to 1024 (common/code_bits.h); bytes little-endian
// (bit d of a code is bit d % 8 of byte d / 8).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/code_bits.h"
#include "common/status.h"

namespace imsat::index {

constexpr size_t kMaxK = 10000;
constexpr int32_t kNoTag = -1;

// A growable array of codes in slot order. Not thread-safe; CodeStore guards it.
class CodeArray {
 public:
  explicit CodeArray(int bits);
  ~CodeArray();
  CodeArray(CodeArray&&) noexcept;
  CodeArray& operator=(CodeArray&&) noexcept;

  int bits() const { return bits_; }
  size_t code_bytes() const { return static_cast<size_t>(bits_) / 8; }
  size_t words() const { return words_; }
  size_t size() const { return size_; }  // slots, deleted ones included
  size_t live() const { return live_; }  // slots not deleted

  // Appends a code of code_bytes() bytes; returns its slot.
  uint32_t append(const uint8_t* code, int32_t tag = kNoTag);
  // Appends a code already packed in words() words (e.g. another array's code(slot)).
  uint32_t append_words(const uint64_t* words, int32_t tag = kNoTag);
  void erase(uint32_t slot);  // tombstone; the slot keeps its bytes and is skipped by searches
  bool is_deleted(uint32_t slot) const { return deleted_[slot] != 0; }
  const uint8_t* deleted_flags() const { return deleted_.data(); }  // by slot, non-zero = deleted
  int32_t tag(uint32_t slot) const { return tags_[slot]; }
  const uint64_t* code(uint32_t slot) const { return data_ + static_cast<size_t>(slot) * words_; }
  const uint64_t* data() const { return data_; }  // 64-byte aligned, size() * words() words
  void reserve(size_t slots);
  size_t memory_bytes() const;

  // Bulk access for the persisted arrays file (store_arrays.cpp): an empty array sized to
  // `slots` whose codes the caller writes through mutable_data(), then the tags and tombstones.
  void resize_for_load(size_t slots);
  uint64_t* mutable_data() { return data_; }
  void set_tags_and_tombstones(std::vector<int32_t> tags, std::vector<uint8_t> deleted);
  const int32_t* tags_data() const { return tags_.data(); }
  const uint8_t* deleted_data() const { return deleted_.data(); }

  // Packs code_bytes() bytes into words() zero-padded words.
  void pack(const uint8_t* code, uint64_t* out) const;
  void unpack(uint32_t slot, uint8_t* out) const;

 private:
  int bits_;
  size_t words_;
  uint64_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  size_t live_ = 0;
  std::vector<int32_t> tags_;
  std::vector<uint8_t> deleted_;
};

}  // namespace imsat::index
