// jemalloc's settings for the programs that link it (CMake's imsat_link_allocator). Without a
// background thread, jemalloc returns freed memory to the system only while the program keeps
// allocating, so an idle server kept every page that parsing a large request had freed (69 MiB
// after 2e6 items were added over HTTP, bench/README.md). A background thread purges pages
// unused for a second; muzzy_decay_ms 0 releases them outright (MADV_DONTNEED) rather than
// leaving them resident until the kernel needs them.
extern "C" {
// NOLINTNEXTLINE: the name jemalloc reads.
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
