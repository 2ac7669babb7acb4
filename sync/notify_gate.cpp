#include "sync/notify_gate.hpp"

namespace crmsync::sync {

bool notify_gate::should_send(key user, int64_t now_ms) {
  auto& s = shard_of(user);
  std::lock_guard<std::mutex> guard{s.mtx};
  auto [it, fresh] = s.sent.try_emplace(user, now_ms);
  if (fresh)
    return true;
  if (now_ms - it->second < resend_after_ms_)
    return false;
  it->second = now_ms;
  return true;
}

void notify_gate::run_starts(key user) {
  auto& s = shard_of(user);
  std::lock_guard<std::mutex> guard{s.mtx};
  s.sent.erase(user);
}

size_t notify_gate::pending() const {
  size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> guard{s.mtx};
    n += s.sent.size();
  }
  return n;
}

} // namespace crmsync::sync
