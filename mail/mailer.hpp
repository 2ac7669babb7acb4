// The node's mailer: sends the e-mail that tenant actors queue in the
// outbox column family (invitations, join requests) through Graph's
// sendMail, from the mailbox each item names.
//
// An event-based actor owns the mailer's state; no thread waits on Graph.
// It reads the rows it is told of (queued), scans the whole outbox when
// woken and on a timer, starts up to
// `max_in_flight` sends at once (`max_in_flight_per_mailbox` of one
// sender) with graph::client::start, each after a slot of the sending
// mailbox's actor (set_directory), and takes each answer back as a
// message. An item leaves the outbox only after Graph accepted it (202),
// so a restart resends what was not confirmed and loses nothing; a crash
// between Graph's answer and the delete can send one e-mail twice. An item
// that keeps failing is kept, marked failed with Graph's error, and an
// audit entry tells the tenant's admins. Every member function is
// thread-safe and none blocks, except the destructor (see there).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "protocol/ids.hpp"
#include "storage/db.hpp"

#include <caf/actor.hpp>

namespace caf {
class actor_system;
} // namespace caf

namespace crmsync::graph {
class client;
} // namespace crmsync::graph

namespace crmsync::mail {

struct mailer_options {
  /// Sends that fail before an item is given up.
  uint32_t max_attempts = 3;
  /// Pause before the first retry of an item; it doubles with each
  /// further failure.
  std::chrono::milliseconds retry_delay{std::chrono::seconds(5)};
  /// Pause between scans of the outbox when nothing woke the mailer.
  std::chrono::milliseconds idle_poll{std::chrono::seconds(30)};
  /// E-mails in flight at once, node-wide.
  uint32_t max_in_flight = 64;
  /// E-mails of one sending mailbox in flight (or waiting for a slot of
  /// its mailbox actor) at once. The mailbox's Graph budget (4 requests in
  /// flight) is shared with the calendar sync of the same user; one at a
  /// time for mail leaves the others to the sync however many invitations
  /// an administrator sends (and the mailbox actor's turns keep mail from
  /// waiting behind a long sync).
  uint32_t max_in_flight_per_mailbox = 1;
  /// How long the destructor lets sends in flight finish and be recorded;
  /// an answer later than that is not recorded (its item is sent again by
  /// the next run).
  std::chrono::milliseconds stop_grace{std::chrono::seconds(10)};
};

struct mailer_stats {
  uint64_t sent = 0;
  uint64_t failed = 0; ///< items given up
  uint64_t retried = 0;
  uint64_t in_flight = 0;     ///< sends started and not answered yet
  uint64_t max_in_flight = 0; ///< the highest in_flight so far
  uint64_t scans = 0;         ///< reads of the whole outbox so far
};

class mailer {
public:
  /// Spawns the mailer's actor in `sys` (hidden: await_all_actors_done
  /// does not wait for it; the destructor ends it). `db` and `graph` must
  /// outlive the mailer; `graph`'s I/O threads message the actor, so the
  /// client must be destroyed before `sys`.
  mailer(caf::actor_system& sys, storage::db& db, graph::client& graph,
         mailer_options opts = {});
  /// Starts no more sends, waits until those in flight are answered and
  /// recorded (at most `stop_grace`), then ends the actor.
  ~mailer();
  mailer(const mailer&) = delete;
  mailer& operator=(const mailer&) = delete;

  /// Something may be due that the mailer was not told of (start-up, an
  /// organization adopted from another node): read the whole outbox now.
  void wake();
  /// These outbox rows were just written: the mailer reads them alone,
  /// not the whole outbox (which holds every failed e-mail, kept for
  /// operators, so a scan per queued e-mail would cost O(outbox)). Keys
  /// handed over before the actor took the last ones travel together.
  void queued(std::vector<std::string> keys);
  /// The node's directory: each send then waits for a slot of the sending
  /// mailbox's actor (actors/mailbox.cpp), which shares the mailbox's
  /// Graph budget fairly with the user's calendar sync. Without one (or
  /// for a sender who is no linked user) sends go straight to Graph.
  void set_directory(caf::actor directory);
  /// In a cluster: whether this node serves a tenant now. E-mail of a
  /// tenant that is moving away waits for its new node.
  void set_owner_check(std::function<bool(tenant_id)> serves);
  /// True while an e-mail of the tenant is being sent (a shard move waits
  /// for none, or the new node could send it again).
  bool busy(tenant_id t) const;

  mailer_stats stats() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace crmsync::mail
