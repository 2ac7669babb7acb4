#include "common/memory.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <malloc.h>
#include <mutex>

namespace crmsync::memory {

namespace {

/// jemalloc's control call, when jemalloc is the process's allocator
/// (linked into crmsyncd, or preloaded); null under glibc's malloc.
using mallctl_fn = int (*)(const char*, void*, size_t*, void*, size_t);

mallctl_fn jemalloc_ctl() {
  static const mallctl_fn fn
      = reinterpret_cast<mallctl_fn>(::dlsym(RTLD_DEFAULT, "mallctl"));
  return fn;
}

uint64_t jemalloc_stat(mallctl_fn ctl, const char* name) {
  size_t value = 0;
  size_t len = sizeof value;
  return ctl(name, &value, &len, nullptr, 0) == 0 ? value : 0;
}

malloc_usage jemalloc_usage(mallctl_fn ctl) {
  // The stats are a snapshot taken when "epoch" is written.
  uint64_t epoch = 1;
  size_t len = sizeof epoch;
  ctl("epoch", &epoch, &len, &epoch, len);
  malloc_usage out;
  out.allocator = "jemalloc";
  out.in_use_bytes = jemalloc_stat(ctl, "stats.allocated");
  auto resident = jemalloc_stat(ctl, "stats.resident");
  out.free_bytes
      = resident > out.in_use_bytes ? resident - out.in_use_bytes : 0;
  out.heap_bytes = jemalloc_stat(ctl, "stats.mapped");
  out.mmap_bytes = jemalloc_stat(ctl, "stats.retained");
  unsigned narenas = 0;
  size_t nlen = sizeof narenas;
  if (ctl("arenas.narenas", &narenas, &nlen, nullptr, 0) == 0)
    out.arenas = narenas;
  return out;
}

} // namespace

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
  if (auto ctl = jemalloc_ctl())
    return jemalloc_usage(ctl);
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
  if (auto ctl = jemalloc_ctl())
    // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena's unused dirty pages.
    ctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
  else
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
