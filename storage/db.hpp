// The node's RocksDB database behind a small, RocksDB-free interface.
//
// One instance per process, opened at start and shared by all actors
// (RocksDB is thread-safe for get/write/iterate). Every write is one atomic
// batch with the WAL on, so a crash leaves either all of a command's effects
// or none. The queue tables (outbox, sync_outbox, inbox) keep a row count
// that every write maintains, so that their depths are read without a scan.
// RocksDB's headers are included by db.cpp only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace crmsync::storage {

/// Column families, one per record kind. Every key in the tenant-scoped
/// families starts with the 8-byte tenant id.
enum class column : uint8_t {
  meta = 0,         ///< schema version and node-level facts
  orgs = 1,         ///< tenant -> org_record
  users = 2,        ///< tenant|user -> user_record
  events = 3,       ///< tenant|event -> event_record
  event_index = 4,  ///< tenant|owner|start|event -> ""
  lookup = 5,       ///< global indexes: e-mail -> user, user -> tenant
  sync = 6,         ///< tenant|user|kind -> mailbox/calendar state
  invites = 7,      ///< tenant|invite -> invite_record
  joins = 8,        ///< tenant|request -> join_request_record
  audit = 9,        ///< tenant|time|seq -> audit_entry
  outbox = 10,      ///< tenant|mail -> mail_item (e-mail to send)
  sessions = 11,    ///< sign-in states and Office 365 sessions (global)
  links = 12,       ///< tenant|user|event -> sync_link
  sync_outbox = 13, ///< tenant|user|seq -> sync_change (CRM -> Office 365)
  inbox = 14,       ///< tenant|user|seq -> notification (Office 365 -> CRM)
  conflicts = 15,   ///< tenant|time|seq -> sync_conflict
  /// node-local durable timers, keyed by due time, not by tenant
  /// (storage/reminder_rows.hpp). Added after the data format 1 existed:
  /// open() creates it in a data directory written without it.
  reminders = 16,
};
constexpr size_t column_count = 17;

const char* column_name(column c);

/// A set of writes applied atomically by db::write.
class write_batch {
public:
  void put(column c, std::string key, std::string value);
  void del(column c, std::string key);
  bool empty() const {
    return ops_.empty();
  }
  size_t size() const {
    return ops_.size();
  }

  struct op {
    column cf;
    bool is_delete;
    std::string key;
    std::string value;
  };
  const std::vector<op>& ops() const {
    return ops_;
  }

private:
  std::vector<op> ops_;
};

/// One key of a db::multi_get.
struct key_ref {
  column cf;
  std::string_view key;
};

/// A key that must be absent (or already hold `value`) for a write to go
/// through: how global uniqueness (e-mail addresses) is enforced.
struct claim {
  column cf;
  std::string key;
  std::string value;
};

/// Claims that must hold across the whole cluster, not just this node's
/// database (cluster/etcd_claims.hpp implements it over etcd). write_claimed
/// takes them after its local check and before its write; write releases
/// the ones whose lookup rows a batch deletes. Called on the writing thread
/// (a tenant actor's), under the database's claim lock.
class global_claims {
public:
  virtual ~global_claims() = default;
  /// All or nothing: crm_errc::conflict naming the first key already held
  /// with another value (the error context of write_claimed), or
  /// crm_errc::unavailable when the claims cannot be checked. `made` gets
  /// the claims this call created (the others were already held with the
  /// same value).
  virtual caf::error take(const std::vector<claim>& claims,
                          std::vector<claim>& made)
      = 0;
  /// Gives up claims this node held with these values (best effort: a
  /// failure is logged, and the claim stays until an operator removes it).
  virtual void release(const std::vector<claim>& held) = 0;
};

/// Whether a write's lookup deletions give up their global claims: a shard
/// move deletes the old copy of rows that live on elsewhere.
enum class claims_effect { release, keep };

struct db_options {
  std::string path;
  /// fsync the WAL on every write. Off by default: the WAL is still written
  /// before a write is acknowledged, so a killed process loses nothing;
  /// only a machine crash can lose the last writes.
  bool sync_writes = false;
  /// The shared block cache (data, index and filter blocks).
  size_t block_cache_bytes = 64u << 20;
  /// All memtables together (one family's: at most a quarter of it and
  /// 32 MiB). Resident at idle once written: a constant, not per user.
  size_t memtable_bytes = 512u << 20;
};

struct db_stats {
  uint64_t estimate_keys = 0;
  uint64_t live_sst_bytes = 0;
  uint64_t memtable_bytes = 0;
  /// What RocksDB holds in memory besides the memtables: the shared block
  /// cache (data, index and filter blocks; pinned: in use by a reader),
  /// and the table readers' own index and filter blocks (outside the
  /// cache unless cache_index_and_filter_blocks).
  uint64_t block_cache_bytes = 0;
  uint64_t block_cache_pinned_bytes = 0;
  uint64_t block_cache_capacity_bytes = 0;
  uint64_t table_readers_bytes = 0;
};

class db {
public:
  /// Opens (creating if needed) the database and checks its format version.
  static caf::expected<std::unique_ptr<db>> open(const db_options& opts);

  ~db();
  db(const db&) = delete;
  db& operator=(const db&) = delete;

  /// Reads one value; `found` tells whether the key exists.
  caf::error get(column cf, std::string_view key, std::string& value,
                 bool& found) const;

  /// Reads several keys of any families at once (RocksDB's batched
  /// MultiGet: one pass over the memtables and table files for all of
  /// them instead of one per key). `values[i]` is the value of `keys[i]`,
  /// empty when the key is absent. A failed read of any key fails the
  /// whole call.
  caf::error multi_get(const std::vector<key_ref>& keys,
                       std::vector<std::optional<std::string>>& values) const;

  /// Applies the batch atomically. With global claims set, the lookup
  /// rows it deletes release their claims (unless `effect` is keep).
  caf::error write(const write_batch& batch,
                   claims_effect effect = claims_effect::release);

  /// The number of rows of a queue table (outbox, sync_outbox, inbox):
  /// counted once at open, then kept by every write that adds or removes
  /// one. 0 for the other tables (they are not counted).
  uint64_t rows(column cf) const;

  /// Applies the batch atomically if every claim holds; otherwise writes
  /// nothing and answers crm_errc::conflict naming the first failed claim's
  /// key in the error context. Claims are checked and written under one
  /// lock, so two claimants of the same key cannot both win.
  caf::error write_claimed(const write_batch& batch,
                           const std::vector<claim>& claims);

  /// Runs `fn` under the lock write_claimed holds, so no claimed write of
  /// this node happens meanwhile (the claim sweep's check-then-release).
  /// t15-ops.
  void under_claim_lock(const std::function<void()>& fn);

  /// Makes claims and their releases cluster-wide (before any write).
  void set_global_claims(std::shared_ptr<global_claims> g);

  /// Visits keys in [begin, end) in order; stops when `fn` returns false.
  caf::error
  scan(column cf, std::string_view begin, std::string_view end,
       const std::function<bool(std::string_view, std::string_view)>& fn) const;

  /// How many keys start with `prefix`, counting at most `limit` (a
  /// failed read counts what it saw).
  uint64_t count_prefix(column cf, std::string_view prefix,
                        uint64_t limit = UINT64_MAX) const;

  /// Flushes memtables and syncs the WAL (clean shutdown).
  caf::error flush();

  db_stats stats() const;

  /// Writes an openable point-in-time copy of the whole database into
  /// `dir` (which must not exist; on the same filesystem its tables are
  /// hard links), while writes go on. `sequence` is the last write in it.
  caf::error checkpoint(const std::string& dir, uint64_t& sequence);

  const std::string& path() const;

private:
  struct impl;
  explicit db(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace crmsync::storage
