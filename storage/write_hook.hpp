// Replication of committed writes (cluster/replication.hpp, ADR 0008):
// what storage::db consults on every db::write and write_claimed outside
// an unreplicated_scope, and the consistent views a shard's snapshot is
// read from. Kept out of db.hpp, which nearly every file includes.
// t15-repl.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>
#include <caf/error.hpp>

#include "storage/db.hpp"

namespace crmsync::storage {

/// Where the acknowledgement of writes is asked for without waiting
/// (t15-ack): `acknowledger` answers (repl_wait_atom, `id`) with true once
/// the writes are acknowledged as required, or with the error await()
/// would have returned (503 replication_timeout once `timeout` passed
/// since the writes, 503 node_unavailable when the shard was lost). An
/// empty acknowledger: nothing to wait for.
struct ack_ticket {
  caf::actor acknowledger;
  uint64_t id = 0;
  std::chrono::milliseconds timeout{0};
};

class write_hook {
public:
  virtual ~write_hook() = default;
  /// Under the commit lock, before the batch is written: the rows to write
  /// with it (`extra`: the shards' sequence rows), or an error refusing
  /// the write (a shard this node may not write). `token` goes to
  /// committed() and await().
  virtual caf::error prepare(const write_batch& batch, write_batch& extra,
                             std::shared_ptr<void>& token)
      = 0;
  /// Under the commit lock, once the write went through (`ok`) or not.
  virtual void committed(const std::shared_ptr<void>& token, bool ok) = 0;
  /// After the lock: waits until the write is acknowledged as required
  /// (crm_errc::unavailable when it was not in time).
  virtual caf::error await(const std::shared_ptr<void>& token) = 0;
  /// After the lock, instead of await(): the writes' acknowledgement as a
  /// ticket to ask for it without blocking a thread (t15-ack).
  virtual ack_ticket defer(const std::vector<std::shared_ptr<void>>& tokens)
      = 0;
};

/// While one lives on a thread, that thread's hooked writes do not wait for
/// their acknowledgement: take() gives them back as one ticket, which an
/// actor asks for with a response promise (actors/tenant/acked.hpp). An
/// inner scope collects for itself. t15-ack.
class ack_scope {
public:
  ack_scope();
  ~ack_scope();
  ack_scope(const ack_scope&) = delete;
  ack_scope& operator=(const ack_scope&) = delete;
  /// The ticket of the writes made since the scope began (or since the
  /// last take()).
  ack_ticket take();
  /// The innermost scope of this thread, or nullptr.
  static ack_scope* current();
  void add(std::shared_ptr<write_hook> hook, std::shared_ptr<void> token);

private:
  ack_scope* outer_ = nullptr;
  std::shared_ptr<write_hook> hook_;
  std::vector<std::shared_ptr<void>> tokens_;
};

/// Marks the calling thread as one of the actor system's (a CAF thread
/// hook calls it, cluster::prepare_actor_system): a hooked write there
/// outside an ack_scope is not waited for (it ships in commit order like
/// every write, but nobody is told it is acknowledged: background writes
/// of sync, reminders, mail). A thread of the actor system never waits for
/// followers. t15-ack.
void mark_scheduler_thread();
bool on_scheduler_thread();

/// While one lives on a thread, that thread's writes bypass the hook (a
/// follower applying a primary's batches, a moved shard's rows).
class unreplicated_scope {
public:
  unreplicated_scope();
  ~unreplicated_scope();
  unreplicated_scope(const unreplicated_scope&) = delete;
  unreplicated_scope& operator=(const unreplicated_scope&) = delete;
  static bool active();
};

/// A consistent point-in-time view of a database (a RocksDB snapshot).
class read_view {
public:
  virtual ~read_view() = default;
};

/// Sets (or, with nullptr, removes) the database's hook.
void set_write_hook(db& store, std::shared_ptr<write_hook> h);

/// Runs `inside` under the commit lock of hooked writes and answers a view
/// of the data as of that moment (no hooked write in between).
std::shared_ptr<read_view>
view_under_commit_lock(db& store, const std::function<void()>& inside);

/// db::scan as of a view (nullptr: now).
caf::error
scan_at(const db& store, column cf, std::string_view begin,
        std::string_view end,
        const std::function<bool(std::string_view, std::string_view)>& fn,
        const read_view* at);

} // namespace crmsync::storage
