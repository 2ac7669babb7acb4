// The mass-delete guard's arithmetic: deletions add up over a window, and a
// run that would bring them above a share of the user's synced events (and
// at least a minimum) waits for an administrator's approval.
//
// Pure functions over the calendar status's counters; no I/O. The caller
// counts the links, stores the window and holds the user. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace crmsync::sync {

struct guard_config {
  /// Most share of the synced events one window may delete unheld.
  double share = 0.5;
  /// Fewer deletions than this are never held.
  size_t minimum = 10;
  /// Deletions add up over this long, so that many small runs (one per
  /// deleted event) cannot slip a mass delete past the guard.
  int64_t window_ms = 10 * 60 * 1000;
};

/// The deletions counted so far (calendar_status::deletes_window_ms and
/// deletes_in_window).
struct delete_window {
  int64_t start_ms = 0;
  uint64_t count = 0;
};

/// `w` as it stands at `now_ms`: restarted when its time is up.
delete_window current_window(delete_window w, int64_t now_ms,
                             const guard_config& cfg);

struct guard_verdict {
  bool hold = false;
  uint64_t total = 0;   ///< deletions in the window, these included
  uint64_t synced = 0;  ///< events synced when the window began
  delete_window window; ///< to store, held or not
};

/// Whether `deletions` more, with `linked` events synced now, must wait
/// for an administrator. An approved run, and one that deletes nothing,
/// go ahead with the window unchanged.
guard_verdict judge_deletes(size_t deletions, size_t linked, bool approved,
                            delete_window w, int64_t now_ms,
                            const guard_config& cfg);

/// The window after `deletions` were applied.
delete_window count_deletions(delete_window w, size_t deletions, int64_t now_ms,
                              const guard_config& cfg);

/// The reason a held user shows (`where`: "in Office 365", "in the CRM").
std::string hold_reason(const guard_verdict& v, const char* where);

} // namespace crmsync::sync
