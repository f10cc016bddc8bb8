// CodeArray: the aligned, word-padded array of codes with tags and tombstones.
#include "index/code_array.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace imsat::index {

CodeArray::CodeArray(int bits) : bits_(bits), words_((static_cast<size_t>(bits) + 63) / 64) {
  IMSAT_CHECK(check_code_bits(bits).is_ok(), "CodeArray with invalid bits");
}

CodeArray::~CodeArray() { std::free(data_); }

CodeArray::CodeArray(CodeArray&& o) noexcept
    : bits_(o.bits_),
      words_(o.words_),
      data_(o.data_),
      size_(o.size_),
      capacity_(o.capacity_),
      live_(o.live_),
      tags_(std::move(o.tags_)),
      deleted_(std::move(o.deleted_)) {
  o.data_ = nullptr;
  o.size_ = o.capacity_ = o.live_ = 0;
}

CodeArray& CodeArray::operator=(CodeArray&& o) noexcept {
  if (this != &o) {
    std::free(data_);
    bits_ = o.bits_;
    words_ = o.words_;
    data_ = o.data_;
    size_ = o.size_;
    capacity_ = o.capacity_;
    live_ = o.live_;
    tags_ = std::move(o.tags_);
    deleted_ = std::move(o.deleted_);
    o.data_ = nullptr;
    o.size_ = o.capacity_ = o.live_ = 0;
  }
  return *this;
}

void CodeArray::reserve(size_t slots) {
  if (slots <= capacity_) return;
  // One extra 64-byte line so SIMD kernels may read a full vector past the last code.
  size_t bytes = slots * words_ * sizeof(uint64_t) + 64;
  bytes = (bytes + 63) / 64 * 64;
  auto* fresh = static_cast<uint64_t*>(std::aligned_alloc(64, bytes));
  IMSAT_CHECK(fresh != nullptr, "out of memory growing the code array");
  // Only the used part is copied and the padding line past the capacity zeroed: the pages of the
  // free capacity stay untouched (not resident) until codes are appended there.
  const size_t used = size_ * words_ * sizeof(uint64_t);
  if (data_ != nullptr) std::memcpy(fresh, data_, used);
  const size_t pad = slots * words_ * sizeof(uint64_t);
  std::memset(reinterpret_cast<char*>(fresh) + pad, 0, bytes - pad);
  std::free(data_);
  data_ = fresh;
  capacity_ = slots;
  tags_.reserve(slots);
  deleted_.reserve(slots);
}

void CodeArray::pack(const uint8_t* code, uint64_t* out) const {
  std::fill(out, out + words_, 0);
  std::memcpy(out, code, code_bytes());
}

void CodeArray::unpack(uint32_t slot, uint8_t* out) const {
  std::memcpy(out, code(slot), code_bytes());
}

uint32_t CodeArray::append(const uint8_t* code, int32_t tag) {
  IMSAT_CHECK(size_ < UINT32_MAX, "code array is full");
  if (size_ == capacity_) reserve(std::max<size_t>(1024, capacity_ * 2));
  pack(code, data_ + size_ * words_);
  tags_.push_back(tag);
  deleted_.push_back(0);
  ++live_;
  return static_cast<uint32_t>(size_++);
}

uint32_t CodeArray::append_words(const uint64_t* words, int32_t tag) {
  IMSAT_CHECK(size_ < UINT32_MAX, "code array is full");
  if (size_ == capacity_) reserve(std::max<size_t>(1024, capacity_ * 2));
  std::memcpy(data_ + size_ * words_, words, words_ * sizeof(uint64_t));
  tags_.push_back(tag);
  deleted_.push_back(0);
  ++live_;
  return static_cast<uint32_t>(size_++);
}

void CodeArray::erase(uint32_t slot) {
  IMSAT_CHECK(slot < size_, "erase of a slot out of range");
  if (!deleted_[slot]) {
    deleted_[slot] = 1;
    --live_;
  }
}

void CodeArray::resize_for_load(size_t slots) {
  IMSAT_CHECK(size_ == 0 && slots <= UINT32_MAX, "resize_for_load of a non-empty array");
  reserve(std::max<size_t>(slots, 1));
  size_ = slots;
}

void CodeArray::set_tags_and_tombstones(std::vector<int32_t> tags, std::vector<uint8_t> deleted) {
  IMSAT_CHECK(tags.size() == size_ && deleted.size() == size_, "tags or tombstones of wrong size");
  tags_ = std::move(tags);
  deleted_ = std::move(deleted);
  live_ = 0;
  for (uint8_t d : deleted_) live_ += d == 0;
}

size_t CodeArray::memory_bytes() const {
  return capacity_ * words_ * sizeof(uint64_t) + tags_.capacity() * sizeof(int32_t) +
         deleted_.capacity();
}

}  // namespace imsat::index
