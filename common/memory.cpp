#include "common/memory.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <mutex>

namespace crmsync::memory {

uint64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr)
    return 0;
  char line[256];
  uint64_t kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::strncmp(line, "VmRSS:", 6) == 0) {
      kib = std::strtoull(line + 6, nullptr, 10);
      break;
    }
  std::fclose(f);
  return kib * 1024;
}

malloc_usage allocator_usage() {
  malloc_usage out;
  auto m = ::mallinfo2();
  out.heap_bytes = m.arena;
  out.in_use_bytes = m.uordblks + m.hblkhd;
  out.free_bytes = m.fordblks;
  out.mmap_bytes = m.hblkhd;
  // malloc_info writes one <heap nr="..."> element per arena.
  char* text = nullptr;
  size_t size = 0;
  if (std::FILE* f = ::open_memstream(&text, &size)) {
    ::malloc_info(0, f);
    std::fclose(f);
    for (const char* p = text;
         p != nullptr && (p = std::strstr(p, "<heap nr=")); ++p)
      ++out.arenas;
    std::free(text);
  }
  return out;
}

namespace {

std::mutex release_mtx;
release_stats released;

} // namespace

void release_free_memory() {
  auto before = resident_bytes();
  auto start = std::chrono::steady_clock::now();
  ::malloc_trim(0);
  auto took = std::chrono::steady_clock::now() - start;
  auto after = resident_bytes();
  std::lock_guard<std::mutex> guard{release_mtx};
  ++released.count;
  released.last_released_bytes
      = static_cast<int64_t>(before) - static_cast<int64_t>(after);
  released.last_took_us
      = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
}

release_stats releases() {
  std::lock_guard<std::mutex> guard{release_mtx};
  return released;
}

} // namespace crmsync::memory
