// The process's own memory: resident size, what the allocator holds, and
// giving freed memory back to the system.
//
// crmsyncd is linked with jemalloc (bin/CMakeLists.txt): it sorts blocks
// by size class, so the churn of actors that start and passivate leaves
// whole pages free, and it returns free pages after a decay time. glibc's
// malloc (the tests, or a build without jemalloc) keeps what was freed in
// its arenas (one per thread that allocated, up to 8 per core) and returns
// only the top of each heap on its own. Which one runs is found at run
// time (jemalloc's mallctl, whether linked or preloaded), so the report
// and release_free_memory() speak for the allocator really in use.
#pragma once

#include <cstdint>

namespace crmsync::memory {

/// The allocator's view. glibc: mallinfo2 and malloc_info over every arena.
/// jemalloc: its stats.* counters (refreshed by writing "epoch").
struct malloc_usage {
  const char* allocator = "glibc"; ///< "glibc" or "jemalloc"
  uint64_t heap_bytes = 0;         ///< glibc: arena heaps; jemalloc: mapped
  uint64_t in_use_bytes = 0;       ///< allocated and not freed
  uint64_t free_bytes = 0;         ///< resident but not allocated (kept free)
  uint64_t mmap_bytes = 0;         ///< glibc: large blocks mmap'd one by one;
                                   ///< jemalloc: retained virtual memory
  uint64_t arenas = 0;             ///< arenas
};

/// VmRSS of /proc/self/status in bytes; 0 when unreadable.
uint64_t resident_bytes();

malloc_usage allocator_usage();

/// Returns the free pages of every arena to the system: glibc's
/// malloc_trim(0), or jemalloc's purge of every arena (fast). glibc's is slow
/// on a fragmented heap (0.5 s measured with ~100 MiB free in 15
/// arenas on a busy machine) and each arena is locked while it is walked:
/// call it from a thread that serves nothing (crmsyncd's main thread).
void release_free_memory();

/// What release_free_memory() did so far (memory report).
struct release_stats {
  uint64_t count = 0;
  int64_t last_released_bytes = 0; ///< resident before minus after
  int64_t last_took_us = 0;
};

release_stats releases();

} // namespace crmsync::memory
