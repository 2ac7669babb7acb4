#include "storage/db.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <utility>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include "protocol/errors.hpp"
#include "storage/keys.hpp"
#include "storage/write_hook.hpp"

namespace crmsync::storage {

namespace {

constexpr const char* format_key = "format_version";
constexpr const char* format_value = "1";

/// The tables whose rows are counted: the queues, whose depths /metrics
/// shows on every scrape.
bool counted(column c) {
  return c == column::outbox || c == column::sync_outbox || c == column::inbox;
}

/// Writers of counted keys lock the stripes of their keys, so that a key's
/// existence before the write and the write itself are one step.
constexpr size_t count_stripes = 16;

caf::error to_error(const rocksdb::Status& st, std::string_view what) {
  return make_crm_error(crm_errc::storage_failure, "storage_failure",
                        std::string{what} + ": " + st.ToString());
}

thread_local int unreplicated_depth = 0;

/// Set by write_claimed around its write: the wait for the followers is
/// left to it, after it gave up the claim lock (a write waiting for its
/// followers must not hold every other creation of the node). t15-repl.
struct deferred_wait {
  bool active = false;
  std::shared_ptr<void> token;
  std::shared_ptr<write_hook> hook;
};
thread_local deferred_wait deferred;

/// The replication hook of one database and what its snapshots need
/// (storage/write_hook.hpp). t15-repl.
struct hook_state {
  /// Hooked writes commit one at a time: their order is the order the
  /// hook ships them in.
  std::mutex commit_mtx;
  std::shared_ptr<write_hook> hook;
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
};

std::mutex registry_mtx;
std::map<const db*, std::shared_ptr<hook_state>> registry;

std::shared_ptr<hook_state> hooks_of(const db& store) {
  std::lock_guard<std::mutex> guard{registry_mtx};
  auto i = registry.find(&store);
  return i == registry.end() ? nullptr : i->second;
}

struct snapshot_view : read_view {
  rocksdb::DB* raw = nullptr;
  const rocksdb::Snapshot* snap = nullptr;
  ~snapshot_view() override {
    if (snap != nullptr)
      raw->ReleaseSnapshot(snap);
  }
};

} // namespace

unreplicated_scope::unreplicated_scope() {
  ++unreplicated_depth;
}

unreplicated_scope::~unreplicated_scope() {
  --unreplicated_depth;
}

bool unreplicated_scope::active() {
  return unreplicated_depth > 0;
}

namespace {

thread_local ack_scope* innermost_ack_scope = nullptr;
thread_local bool scheduler_thread = false;

/// A hooked write's acknowledgement once it is stored here: waited for,
/// collected by the thread's ack_scope, or (on a thread of the actor
/// system outside one) not waited for. t15-ack.
caf::error settle(const std::shared_ptr<write_hook>& hook,
                  std::shared_ptr<void> token) {
  if (auto* scope = ack_scope::current()) {
    scope->add(hook, std::move(token));
    return caf::none;
  }
  if (scheduler_thread)
    return caf::none;
  return hook->await(token);
}

} // namespace

ack_scope::ack_scope() : outer_(innermost_ack_scope) {
  innermost_ack_scope = this;
}

ack_scope::~ack_scope() {
  innermost_ack_scope = outer_;
}

ack_scope* ack_scope::current() {
  return innermost_ack_scope;
}

void ack_scope::add(std::shared_ptr<write_hook> hook,
                    std::shared_ptr<void> token) {
  // One database, one hook: a hook set anew in between takes over.
  if (hook_ != hook)
    tokens_.clear();
  hook_ = std::move(hook);
  tokens_.push_back(std::move(token));
}

ack_ticket ack_scope::take() {
  ack_ticket t;
  if (hook_ && !tokens_.empty())
    t = hook_->defer(tokens_);
  tokens_.clear();
  hook_.reset();
  return t;
}

void mark_scheduler_thread() {
  scheduler_thread = true;
}

bool on_scheduler_thread() {
  return scheduler_thread;
}

const char* column_name(column c) {
  static constexpr const char* names[] = {
      "meta",  "orgs",        "users", "events",    "event_index", "lookup",
      "sync",  "invites",     "joins", "audit",     "outbox",      "sessions",
      "links", "sync_outbox", "inbox", "conflicts", "reminders"};
  static_assert(sizeof(names) / sizeof(names[0]) == column_count);
  return names[static_cast<size_t>(c)];
}

void write_batch::put(column c, std::string key, std::string value) {
  ops_.push_back(op{c, false, std::move(key), std::move(value)});
}

void write_batch::del(column c, std::string key) {
  ops_.push_back(op{c, true, std::move(key), {}});
}

struct db::impl {
  std::string path;
  db_options opts;
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles; // index = column + 1
  rocksdb::ColumnFamilyHandle* default_cf = nullptr;
  std::mutex claim_mtx;
  std::shared_ptr<global_claims> global;
  std::shared_ptr<hook_state> hooks = std::make_shared<hook_state>();
  std::array<std::mutex, count_stripes> count_mtx;
  std::array<std::atomic<int64_t>, column_count> rows{};

  rocksdb::ColumnFamilyHandle* cf(column c) const {
    return handles[static_cast<size_t>(c)];
  }

  ~impl() {
    if (raw == nullptr)
      return;
    for (auto* h : handles)
      raw->DestroyColumnFamilyHandle(h);
    if (default_cf != nullptr)
      raw->DestroyColumnFamilyHandle(default_cf);
    raw->Close();
    delete raw;
  }

  rocksdb::WriteOptions write_options() const {
    rocksdb::WriteOptions wo;
    wo.sync = opts.sync_writes;
    return wo;
  }

  rocksdb::Status apply(const write_batch& batch) {
    rocksdb::WriteBatch wb;
    for (auto& o : batch.ops()) {
      auto st = o.is_delete ? wb.Delete(cf(o.cf), o.key)
                            : wb.Put(cf(o.cf), o.key, o.value);
      if (!st.ok())
        return st;
    }
    return raw->Write(write_options(), &wb);
  }

  /// apply() for a batch with counted keys: each key's existence before and
  /// after the batch gives its change to the row count.
  rocksdb::Status apply_counted(const write_batch& batch) {
    std::array<bool, count_stripes> needed{};
    for (auto& o : batch.ops())
      if (counted(o.cf))
        needed[std::hash<std::string_view>{}(o.key) % count_stripes] = true;
    std::vector<std::unique_lock<std::mutex>> locks;
    for (size_t i = 0; i < count_stripes; ++i) // in order: no deadlock
      if (needed[i])
        locks.emplace_back(count_mtx[i]);
    // (table, key) -> (exists before, exists after)
    std::map<std::pair<column, std::string_view>, std::pair<bool, bool>> keys;
    for (auto& o : batch.ops()) {
      if (!counted(o.cf))
        continue;
      auto [it, fresh] = keys.try_emplace({o.cf, o.key});
      if (fresh) {
        std::string ignored;
        auto st = raw->Get(rocksdb::ReadOptions{}, cf(o.cf), o.key, &ignored);
        if (!st.ok() && !st.IsNotFound())
          return st;
        it->second.first = st.ok();
      }
      it->second.second = !o.is_delete;
    }
    auto st = apply(batch);
    if (!st.ok())
      return st;
    for (auto& [key, existence] : keys)
      rows[static_cast<size_t>(key.first)]
          += int64_t{existence.second} - int64_t{existence.first};
    return st;
  }
};

db::db(std::unique_ptr<impl> p) : impl_(std::move(p)) {
  impl_->hooks->raw = impl_->raw;
  impl_->hooks->handles = impl_->handles;
  std::lock_guard<std::mutex> guard{registry_mtx};
  registry[this] = impl_->hooks;
}

db::~db() {
  std::lock_guard<std::mutex> guard{registry_mtx};
  registry.erase(this);
}

caf::expected<std::unique_ptr<db>> db::open(const db_options& opts) {
  auto p = std::make_unique<impl>();
  p->path = opts.path;
  p->opts = opts;
  rocksdb::DBOptions dbo;
  dbo.create_if_missing = true;
  // Families added by a later release (reminders) are created in a data
  // directory written before them; RocksDB refuses to open a directory
  // whose existing families are not all listed, so none is ever removed.
  dbo.create_missing_column_families = true;
  // One flush thread and one compaction thread. Two background jobs allow
  // one flush and one compaction at a time (RocksDB gives a quarter of the
  // jobs, at least one, to flushes), so IncreaseParallelism(2)'s second
  // compaction thread only ever waited.
  dbo.max_background_jobs = 2;
  dbo.env->SetBackgroundThreads(1, rocksdb::Env::LOW);
  dbo.env->SetBackgroundThreads(1, rocksdb::Env::HIGH);
  // Bound the WAL and the memtables: a rarely written family must not keep
  // gigabytes of log alive (and make crash recovery replay all of it).
  dbo.max_total_wal_size = 256u << 20;
  // Memory is bounded by two numbers that do not grow with users or data:
  // the memtables of all families together (db_write_buffer_size: the
  // largest is flushed when they pass it; at idle they stay resident), and
  // the block cache, which also holds every table's index and filter
  // blocks (without cache_index_and_filter_blocks each open table keeps
  // them outside the cache, a cost that grows with the data). L0's stay
  // pinned: every read consults them. A 64 MiB memtable cap was tried
  // (issue 13, t13-mem): setups of 50,000 users then timed out on a busy
  // machine, cause not established (more flushes and L0 files with one
  // compaction thread are a suspect), so it stays at 512 MiB.
  dbo.db_write_buffer_size = opts.memtable_bytes;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(opts.block_cache_bytes);
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  rocksdb::ColumnFamilyOptions cfo;
  cfo.write_buffer_size = std::min<size_t>(32u << 20, opts.memtable_bytes / 4);
  cfo.max_write_buffer_number = 3;
  cfo.level_compaction_dynamic_level_bytes = true;
  cfo.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  descs.emplace_back(rocksdb::kDefaultColumnFamilyName, cfo);
  for (size_t i = 0; i < column_count; ++i)
    descs.emplace_back(column_name(static_cast<column>(i)), cfo);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  auto st = rocksdb::DB::Open(dbo, opts.path, descs, &handles, &p->raw);
  if (!st.ok())
    return to_error(st, "cannot open database at " + opts.path);
  p->default_cf = handles[0];
  p->handles.assign(handles.begin() + 1, handles.end());
  // Refuse data written by an unknown (future) format rather than misread it.
  std::string version;
  st = p->raw->Get(rocksdb::ReadOptions{}, p->cf(column::meta), format_key,
                   &version);
  if (st.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    st = p->raw->Put(wo, p->cf(column::meta), format_key, format_value);
    if (!st.ok())
      return to_error(st, "cannot write format version");
  } else if (!st.ok()) {
    return to_error(st, "cannot read format version");
  } else if (version != format_value) {
    return make_crm_error(crm_errc::storage_failure, "unsupported_format",
                          "database at " + opts.path + " has format version "
                              + version + "; this build reads version "
                              + format_value);
  }
  for (size_t i = 0; i < column_count; ++i) {
    if (!counted(static_cast<column>(i)))
      continue;
    std::unique_ptr<rocksdb::Iterator> it{
        p->raw->NewIterator(rocksdb::ReadOptions{}, p->handles[i])};
    int64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next())
      ++n;
    if (!it->status().ok())
      return to_error(it->status(),
                      "cannot count the rows of "
                          + std::string{column_name(static_cast<column>(i))});
    p->rows[i] = n;
  }
  return std::unique_ptr<db>(new db(std::move(p)));
}

caf::error db::get(column cf, std::string_view key, std::string& value,
                   bool& found) const {
  auto st = impl_->raw->Get(rocksdb::ReadOptions{}, impl_->cf(cf),
                            rocksdb::Slice{key.data(), key.size()}, &value);
  if (st.IsNotFound()) {
    found = false;
    return caf::none;
  }
  if (!st.ok())
    return to_error(st, "read failed");
  found = true;
  return caf::none;
}

caf::error
db::multi_get(const std::vector<key_ref>& keys,
              std::vector<std::optional<std::string>>& values) const {
  auto n = keys.size();
  values.assign(n, std::nullopt);
  if (n == 0)
    return caf::none;
  std::vector<rocksdb::ColumnFamilyHandle*> families(n);
  std::vector<rocksdb::Slice> slices(n);
  for (size_t i = 0; i < n; ++i) {
    families[i] = impl_->cf(keys[i].cf);
    slices[i] = rocksdb::Slice{keys[i].key.data(), keys[i].key.size()};
  }
  std::vector<rocksdb::PinnableSlice> found(n);
  std::vector<rocksdb::Status> statuses(n);
  impl_->raw->MultiGet(rocksdb::ReadOptions{}, n, families.data(),
                       slices.data(), found.data(), statuses.data());
  for (size_t i = 0; i < n; ++i) {
    if (statuses[i].IsNotFound())
      continue;
    if (!statuses[i].ok())
      return to_error(statuses[i], "read failed");
    values[i].emplace(found[i].data(), found[i].size());
  }
  return caf::none;
}

caf::error db::write(const write_batch& batch, claims_effect effect) {
  if (batch.empty())
    return caf::none;
  // The claims this batch gives up, with the values this node held them
  // with (a claim is released only by whoever holds it).
  std::vector<claim> released;
  if (impl_->global && effect == claims_effect::release)
    for (auto& o : batch.ops())
      if (o.is_delete && o.cf == column::lookup
          && keys::globally_unique(o.key)) {
        std::string held;
        auto st = impl_->raw->Get(rocksdb::ReadOptions{},
                                  impl_->cf(column::lookup), o.key, &held);
        if (st.ok())
          released.push_back({column::lookup, o.key, std::move(held)});
      }
  auto commit = [this](const write_batch& b) {
    bool any_counted = false;
    for (auto& o : b.ops())
      any_counted = any_counted || counted(o.cf);
    return any_counted ? impl_->apply_counted(b) : impl_->apply(b);
  };
  rocksdb::Status st;
  std::shared_ptr<void> token;
  auto hook = std::atomic_load(&impl_->hooks->hook);
  if (!hook || unreplicated_scope::active()) {
    st = commit(batch);
  } else {
    std::lock_guard<std::mutex> guard{impl_->hooks->commit_mtx};
    write_batch extra;
    if (auto err = hook->prepare(batch, extra, token))
      return err;
    if (extra.empty()) {
      st = commit(batch);
    } else {
      write_batch whole = batch;
      for (auto& o : extra.ops())
        if (o.is_delete)
          whole.del(o.cf, o.key);
        else
          whole.put(o.cf, o.key, o.value);
      st = commit(whole);
    }
    if (token)
      hook->committed(token, st.ok());
  }
  if (!st.ok())
    return to_error(st, "write failed");
  if (!released.empty())
    impl_->global->release(released);
  if (token) {
    if (deferred.active) {
      deferred.token = std::move(token);
      deferred.hook = std::move(hook);
      return caf::none;
    }
    return settle(hook, std::move(token));
  }
  return caf::none;
}

void set_write_hook(db& store, std::shared_ptr<write_hook> h) {
  if (auto st = hooks_of(store))
    std::atomic_store(&st->hook, std::move(h));
}

std::shared_ptr<read_view>
view_under_commit_lock(db& store, const std::function<void()>& inside) {
  auto st = hooks_of(store);
  auto v = std::make_shared<snapshot_view>();
  v->raw = st->raw;
  std::lock_guard<std::mutex> guard{st->commit_mtx};
  v->snap = st->raw->GetSnapshot();
  inside();
  return v;
}

caf::error
scan_at(const db& store, column cf, std::string_view begin,
        std::string_view end,
        const std::function<bool(std::string_view, std::string_view)>& fn,
        const read_view* at) {
  if (at == nullptr)
    return store.scan(cf, begin, end, fn);
  auto st = hooks_of(store);
  rocksdb::ReadOptions ro;
  ro.snapshot = static_cast<const snapshot_view*>(at)->snap;
  rocksdb::Slice upper{end.data(), end.size()};
  if (!end.empty())
    ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it{
      st->raw->NewIterator(ro, st->handles[static_cast<size_t>(cf)])};
  for (it->Seek(rocksdb::Slice{begin.data(), begin.size()}); it->Valid();
       it->Next()) {
    auto k = it->key();
    auto v = it->value();
    if (!fn(std::string_view{k.data(), k.size()},
            std::string_view{v.data(), v.size()}))
      break;
  }
  if (!it->status().ok())
    return to_error(it->status(), "scan failed");
  return caf::none;
}

caf::error db::write_claimed(const write_batch& batch,
                             const std::vector<claim>& claims) {
  deferred_wait waiting;
  auto locked = [&]() -> caf::error {
    std::lock_guard<std::mutex> guard{impl_->claim_mtx};
    for (auto& c : claims) {
      std::string existing;
      auto st = impl_->raw->Get(rocksdb::ReadOptions{}, impl_->cf(c.cf), c.key,
                                &existing);
      if (st.ok() && existing != c.value)
        return make_crm_error(crm_errc::conflict, "claim_taken", c.key);
      if (!st.ok() && !st.IsNotFound())
        return to_error(st, "read failed");
    }
    auto deferring = [&] {
      deferred = deferred_wait{};
      deferred.active = true;
      auto err = write(batch);
      waiting = std::move(deferred);
      deferred = deferred_wait{};
      return err;
    };
    if (!impl_->global)
      return deferring();
    // This node's check passed; the cluster's decides (two nodes claiming
    // the same address at once: one of them wins there).
    std::vector<claim> global;
    for (auto& c : claims)
      if (c.cf == column::lookup && keys::globally_unique(c.key))
        global.push_back(c);
    std::vector<claim> made;
    if (!global.empty())
      if (auto err = impl_->global->take(global, made))
        return err;
    auto err = deferring();
    if (err && !made.empty())
      impl_->global->release(made);
    return err;
  };
  auto err = locked();
  // The claims and the rows are stored here; the followers' confirmation
  // (replication, t15-repl) is waited for without the claim lock. Not
  // confirmed: 503, but the claims stay with the rows they protect.
  if (!err && waiting.token)
    return settle(waiting.hook, std::move(waiting.token));
  return err;
}

void db::under_claim_lock(const std::function<void()>& fn) {
  std::lock_guard<std::mutex> guard{impl_->claim_mtx};
  fn();
}

void db::set_global_claims(std::shared_ptr<global_claims> g) {
  impl_->global = std::move(g);
}

uint64_t db::count_prefix(column cf, std::string_view prefix,
                          uint64_t limit) const {
  uint64_t n = 0;
  if (limit == 0)
    return 0;
  auto end = keys::prefix_end(prefix);
  scan(cf, prefix, end,
       [&n, limit](std::string_view, std::string_view) { return ++n < limit; });
  return n;
}

caf::error db::scan(
    column cf, std::string_view begin, std::string_view end,
    const std::function<bool(std::string_view, std::string_view)>& fn) const {
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper{end.data(), end.size()};
  if (!end.empty())
    ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it{
      impl_->raw->NewIterator(ro, impl_->cf(cf))};
  for (it->Seek(rocksdb::Slice{begin.data(), begin.size()}); it->Valid();
       it->Next()) {
    auto k = it->key();
    auto v = it->value();
    if (!fn(std::string_view{k.data(), k.size()},
            std::string_view{v.data(), v.size()}))
      break;
  }
  if (!it->status().ok())
    return to_error(it->status(), "scan failed");
  return caf::none;
}

caf::error db::flush() {
  std::vector<rocksdb::ColumnFamilyHandle*> all = impl_->handles;
  all.push_back(impl_->default_cf);
  auto st = impl_->raw->Flush(rocksdb::FlushOptions{}, all);
  if (!st.ok())
    return to_error(st, "flush failed");
  st = impl_->raw->SyncWAL();
  if (!st.ok())
    return to_error(st, "WAL sync failed");
  return caf::none;
}

db_stats db::stats() const {
  db_stats out;
  for (auto* h : impl_->handles) {
    uint64_t v = 0;
    if (impl_->raw->GetIntProperty(h, "rocksdb.estimate-num-keys", &v))
      out.estimate_keys += v;
    if (impl_->raw->GetIntProperty(h, "rocksdb.live-sst-files-size", &v))
      out.live_sst_bytes += v;
    if (impl_->raw->GetIntProperty(h, "rocksdb.cur-size-all-mem-tables", &v))
      out.memtable_bytes += v;
    if (impl_->raw->GetIntProperty(h, "rocksdb.estimate-table-readers-mem", &v))
      out.table_readers_bytes += v;
  }
  // One cache shared by every family: read once.
  auto* h = impl_->handles.front();
  uint64_t v = 0;
  if (impl_->raw->GetIntProperty(h, "rocksdb.block-cache-usage", &v))
    out.block_cache_bytes = v;
  if (impl_->raw->GetIntProperty(h, "rocksdb.block-cache-pinned-usage", &v))
    out.block_cache_pinned_bytes = v;
  if (impl_->raw->GetIntProperty(h, "rocksdb.block-cache-capacity", &v))
    out.block_cache_capacity_bytes = v;
  return out;
}

caf::error db::checkpoint(const std::string& dir, uint64_t& sequence) {
  rocksdb::Checkpoint* raw_cp = nullptr;
  auto st = rocksdb::Checkpoint::Create(impl_->raw, &raw_cp);
  if (!st.ok())
    return to_error(st, "cannot start a checkpoint");
  std::unique_ptr<rocksdb::Checkpoint> cp{raw_cp};
  // log_size_for_flush 0: the memtables are flushed first, so the copy
  // holds few log bytes; the live logs it still needs are copied with it,
  // which keeps every write batch whole across the column families.
  st = cp->CreateCheckpoint(dir, 0, &sequence);
  if (!st.ok())
    return to_error(st, "cannot write a checkpoint to " + dir);
  return caf::none;
}

uint64_t db::rows(column cf) const {
  auto n = impl_->rows[static_cast<size_t>(cf)].load();
  return n > 0 ? static_cast<uint64_t>(n) : 0;
}

const std::string& db::path() const {
  return impl_->path;
}

} // namespace crmsync::storage
