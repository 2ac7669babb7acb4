// One pending wake-up message per calendar for the webhook ingress.
//
// Each stored notification must wake its user's calendar actor, but a
// flood of them (thousands a second for one mailbox) need not be as many
// messages: a calendar that got a notify_atom runs (now, after the gap
// between runs, or after the run in progress), and that run reads every
// inbox row stored before it started. So the ingress sends a message only
// when none is pending for the user (should_send(), after the row is
// stored), and the actor clears the mark when a run starts (run_starts(),
// before that run reads the inbox): a row stored after it sends a message
// again. A mark that no run clears (its message was lost with a failed
// actor, or its run ended before reading the inbox) holds for
// `resend_after` at most.
// Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace crmsync::sync {

class notify_gate {
public:
  using key = std::pair<uint64_t, uint64_t>; ///< (tenant, user)

  explicit notify_gate(int64_t resend_after_ms = 1000)
      : resend_after_ms_(resend_after_ms) {}

  /// Whether to send the user's calendar a notify_atom now: when none is
  /// pending, or the pending one was sent `resend_after` ago or earlier.
  /// On true, the message is taken as sent at `now_ms`.
  bool should_send(key user, int64_t now_ms);

  /// The user's calendar starts a run: the next notification sends again.
  void run_starts(key user);

  /// Users with a message pending (for tests).
  size_t pending() const;

private:
  struct hash {
    size_t operator()(const key& k) const {
      return static_cast<size_t>(k.first * 0x9e3779b97f4a7c15ULL ^ k.second);
    }
  };
  struct shard {
    mutable std::mutex mtx;
    std::unordered_map<key, int64_t, hash> sent; ///< user -> sent at (ms)
  };
  shard& shard_of(const key& k) {
    return shards_[hash{}(k) % shards_.size()];
  }

  const int64_t resend_after_ms_;
  std::array<shard, 16> shards_;
};

} // namespace crmsync::sync
