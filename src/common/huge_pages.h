// Transparent huge pages for large buffers that are filled once and then read at random.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace imsat {

// Asks the kernel for transparent huge pages over a freshly reserved (not yet touched) buffer.
// Filling hundreds of MB page by page costs more in page faults than the work itself, and reading
// rows at random from such a buffer misses the TLB on nearly every row with 4 KiB pages. Harmless
// where THP is off or `bytes` is small.
inline void advise_huge_pages(const void* data, size_t bytes) {
  const size_t page = 4096, huge = size_t{2} << 20;
  if (bytes < 2 * huge) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(page - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

// v.reserve(n), with huge pages asked for over the new buffer.
template <typename T>
void reserve_huge(std::vector<T>& v, size_t n) {
  v.reserve(n);
  advise_huge_pages(v.data(), n * sizeof(T));
}

}  // namespace imsat
