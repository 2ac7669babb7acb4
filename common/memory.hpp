// The process's own memory: resident size, what glibc's allocator holds,
// and giving freed memory back to the system.
//
// glibc keeps memory that was freed inside its arenas (one per thread that
// allocated, up to 8 per core) and returns only the top of each heap on
// its own. After a wave of passivations most of what the actors held is
// free but still resident; release_free_memory() (malloc_trim) hands the
// free pages of every arena back.
#pragma once

#include <cstdint>

namespace crmsync::memory {

/// glibc malloc's view (mallinfo2, every arena).
struct malloc_usage {
  uint64_t heap_bytes = 0;   ///< arena memory obtained by brk/mmap'd heaps
  uint64_t in_use_bytes = 0; ///< allocated and not freed (heaps and mmap)
  uint64_t free_bytes = 0;   ///< freed, kept in the arenas
  uint64_t mmap_bytes = 0;   ///< large blocks mmap'd one by one
  uint64_t arenas = 0;       ///< arenas (malloc_info)
};

/// VmRSS of /proc/self/status in bytes; 0 when unreadable.
uint64_t resident_bytes();

malloc_usage allocator_usage();

/// Returns the free pages of every arena to the system (malloc_trim(0)).
/// Slow on a fragmented heap (0.5 s measured with ~100 MiB free in 15
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
