// The mass-delete guard: deletions counted over a window, held runs, approvals.
#include "sync/calendar/run.hpp"

namespace crmsync::sync::calendar {

size_t calendar_run::linked_count() {
  size_t n = 0;
  auto prefix = keys::of_user(org_, user_);
  ctx_.db.scan(column::links, prefix, keys::prefix_end(prefix),
               [&n](std::string_view, std::string_view) {
                 ++n;
                 return true;
               });
  return n;
}

bool calendar_run::guard_deletes(size_t deletions, const char* where,
                                 size_t pending_creates) {
  // Counting the links is a scan: only when the guard may hold.
  size_t linked = deletes_approved_ || deletions == 0
                      ? 0
                      : linked_count() + pending_creates;
  auto v = judge_deletes(deletions, linked, deletes_approved_,
                         delete_window_of_status(), cfg_.now_ms(),
                         guard_settings());
  set_delete_window(v.window);
  if (!v.hold)
    return true;
  status_.state = calendar_state::held;
  status_.last_error = hold_reason(v, where);
  save_status();
  log::warn("sync " + org_.str() + "/" + user_.str() + ": "
            + status_.last_error);
  return false;
}

void calendar_run::note_deletions(size_t n) {
  set_delete_window(count_deletions(delete_window_of_status(), n, cfg_.now_ms(),
                                    guard_settings()));
}

guard_config calendar_run::guard_settings() const {
  guard_config g;
  g.share = cfg_.mass_delete_share;
  g.minimum = cfg_.mass_delete_minimum;
  return g;
}

delete_window calendar_run::delete_window_of_status() const {
  return delete_window{status_.deletes_window_ms, status_.deletes_in_window};
}

void calendar_run::set_delete_window(const delete_window& w) {
  status_.deletes_window_ms = w.start_ms;
  status_.deletes_in_window = w.count;
}

void calendar_run::spend_approval() {
  storage::write_batch b;
  b.del(column::sync, keys::sync_approval_key(org_, user_));
  ctx_.db.write(b);
}

bool calendar_run::reconcile_due() const {
  return cfg_.now_ms() - status_.last_sync_ms
         >= std::chrono::milliseconds(cfg_.reconcile_interval).count() / 2;
}

} // namespace crmsync::sync::calendar
