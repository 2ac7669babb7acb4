// The node's mailer: sends the e-mail that tenant actors queue in the
// outbox column family (invitations, join requests) through Graph's
// sendMail, from the mailbox each item names.
//
// One thread. An item leaves the outbox only after Graph accepted it (202),
// so a restart resends what was not confirmed and loses nothing; a crash
// between Graph's answer and the delete can send one e-mail twice. An item
// that keeps failing is kept, marked failed with Graph's error, and an
// audit entry tells the tenant's admins. wake() is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "protocol/ids.hpp"
#include "storage/db.hpp"

namespace crmsync::graph {
class client;
} // namespace crmsync::graph

namespace crmsync::mail {

struct mailer_options {
  /// Passes over the outbox an item may fail before it is given up.
  uint32_t max_attempts = 3;
  /// Pause before a pass that retries failed items.
  std::chrono::milliseconds retry_delay{std::chrono::seconds(5)};
  /// Pause between passes when nothing woke the mailer.
  std::chrono::milliseconds idle_poll{std::chrono::seconds(30)};
};

struct mailer_stats {
  uint64_t sent = 0;
  uint64_t failed = 0; ///< items given up
  uint64_t retried = 0;
};

class mailer {
public:
  mailer(storage::db& db, graph::client& graph, mailer_options opts = {});
  ~mailer();
  mailer(const mailer&) = delete;
  mailer& operator=(const mailer&) = delete;

  /// New e-mail was queued: look now.
  void wake();
  /// In a cluster: whether this node serves a tenant now. E-mail of a
  /// tenant that is moving away waits for its new node.
  void set_owner_check(std::function<bool(tenant_id)> serves);
  /// True while an e-mail of the tenant is being sent (a shard move waits
  /// for none, or the new node could send it again).
  bool busy(tenant_id t) const;

  mailer_stats stats() const;

private:
  void run();
  /// One pass over the outbox; true when some item is waiting to retry.
  bool pass();

  storage::db& db_;
  graph::client& graph_;
  mailer_options opts_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool stopping_ = false;
  mailer_stats stats_;
  std::function<bool(tenant_id)> serves_;
  std::atomic<uint64_t> sending_{0}; ///< tenant of the e-mail in flight
  std::thread worker_;
};

} // namespace crmsync::mail
