// imsat::index::SlotIds — the slot <-> id map of the in-memory arrays, kept as runs. Slots and ids
// both increase (an item appended gets the next slot and the next id), so id - slot changes only
// where items were deleted before the arrays were rebuilt at open: a store with few deletions
// needs a few runs instead of 8 bytes per item.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace imsat::index {

class SlotIds {
 public:
  size_t size() const { return size_; }
  size_t runs() const { return run_slot_.size(); }
  size_t memory_bytes() const { return run_slot_.capacity() * 4 + run_offset_.capacity() * 8; }

  // Appends the id of slot size(); ids must increase.
  void push_back(uint64_t id) {
    const uint64_t offset = id - size_;
    if (run_offset_.empty() || run_offset_.back() != offset) {
      run_slot_.push_back(static_cast<uint32_t>(size_));
      run_offset_.push_back(offset);
    }
    ++size_;
  }
  void clear() {
    run_slot_.clear();
    run_offset_.clear();
    size_ = 0;
  }

  uint64_t operator[](size_t slot) const { return slot + run_offset_[run_of(slot)]; }
  uint64_t back() const { return (*this)[size_ - 1]; }

  // The slot holding `id`, or -1.
  int64_t find(uint64_t id) const {
    // The last run starting at an id <= `id` (run r starts at id run_slot_[r] + run_offset_[r]).
    size_t lo = 0, hi = run_slot_.size();
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (run_slot_[mid] + run_offset_[mid] <= id) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo == 0) return -1;
    const size_t r = lo - 1;
    const uint64_t slot = id - run_offset_[r];
    const uint64_t end = r + 1 < run_slot_.size() ? run_slot_[r + 1] : size_;
    return slot < end ? static_cast<int64_t>(slot) : -1;
  }
  // The first slot whose id is greater than `id` (size() when none).
  size_t upper_bound(uint64_t id) const {
    size_t lo = 0, hi = size_;
    while (lo < hi) {  // ids increase with slots
      const size_t mid = (lo + hi) / 2;
      if ((*this)[mid] <= id) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  // For the persisted arrays file.
  const std::vector<uint32_t>& run_slots() const { return run_slot_; }
  const std::vector<uint64_t>& run_offsets() const { return run_offset_; }
  void assign(std::vector<uint32_t> slots, std::vector<uint64_t> offsets, size_t size) {
    run_slot_ = std::move(slots);
    run_offset_ = std::move(offsets);
    size_ = size;
  }

 private:
  size_t run_of(size_t slot) const {
    return static_cast<size_t>(
               std::upper_bound(run_slot_.begin(), run_slot_.end(), static_cast<uint32_t>(slot)) -
               run_slot_.begin()) -
           1;
  }
  std::vector<uint32_t> run_slot_;    // first slot of each run
  std::vector<uint64_t> run_offset_;  // id - slot within the run
  size_t size_ = 0;
};

}  // namespace imsat::index
