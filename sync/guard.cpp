#include "sync/guard.hpp"

namespace crmsync::sync {

delete_window current_window(delete_window w, int64_t now_ms,
                             const guard_config& cfg) {
  if (now_ms - w.start_ms > cfg.window_ms)
    return delete_window{now_ms, 0};
  return w;
}

guard_verdict judge_deletes(size_t deletions, size_t linked, bool approved,
                            delete_window w, int64_t now_ms,
                            const guard_config& cfg) {
  guard_verdict v;
  v.window = w;
  if (approved || deletions == 0)
    return v;
  v.window = current_window(w, now_ms, cfg);
  v.total = v.window.count + deletions;
  v.synced = linked + v.window.count;
  v.hold = v.total >= cfg.minimum
           && static_cast<double>(v.total)
                  > cfg.share * static_cast<double>(v.synced);
  return v;
}

delete_window count_deletions(delete_window w, size_t deletions, int64_t now_ms,
                              const guard_config& cfg) {
  if (deletions == 0)
    return w;
  w = current_window(w, now_ms, cfg);
  w.count += deletions;
  return w;
}

std::string hold_reason(const guard_verdict& v, const char* where) {
  return "mass-delete guard: this sync would delete " + std::to_string(v.total)
         + " of " + std::to_string(v.synced) + " synced events " + where
         + "; an administrator must approve "
           "(crmsyncctl approve-deletes USER) or disable sync";
}

} // namespace crmsync::sync
