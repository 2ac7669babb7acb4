// Replication of committed writes (cluster/replication.hpp, ADR 0008):
// what storage::db consults on every db::write and write_claimed outside
// an unreplicated_scope, and the consistent views a shard's snapshot is
// read from. Kept out of db.hpp, which nearly every file includes.
// t15-repl.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include <caf/error.hpp>

#include "storage/db.hpp"

namespace crmsync::storage {

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
};

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
