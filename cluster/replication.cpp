#include "cluster/replication.hpp"

#include <algorithm>

#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/thread_hook.hpp>

#include "cluster/etcd_membership.hpp"
#include "cluster/shards.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "protocol/errors.hpp"
#include "protocol/json.hpp"
#include "protocol/type_ids.hpp"
#include "storage/keys.hpp"
#include "storage/org_rows.hpp"

namespace crmsync::cluster {

using namespace crmsync::atom;

namespace {

std::string held_key(uint32_t shard) {
  return "repl/shard/" + std::to_string(shard);
}

constexpr size_t chunk_bytes = 1u << 20;
constexpr size_t push_entries = 2000;
constexpr std::chrono::seconds exchange_timeout{10};
/// A sender whose follower did not answer (or is not connected) tries
/// again after this.
constexpr std::chrono::milliseconds retry_after{200};

struct scheduler_thread_marker : caf::thread_hook {
  void init(caf::actor_system&) override {}
  void thread_started() override {
    storage::mark_scheduler_thread();
  }
  void thread_terminates() override {}
};

} // namespace

void mark_actor_threads(caf::actor_system_config& cfg) {
  cfg.add_thread_hook<scheduler_thread_marker>();
}

bool parse_ack_mode(const std::string& text, ack_mode& out) {
  if (text == "0")
    out = ack_mode::none;
  else if (text == "1")
    out = ack_mode::one;
  else if (text == "all")
    out = ack_mode::all;
  else
    return false;
  return true;
}

const char* ack_mode_name(ack_mode m) {
  switch (m) {
    case ack_mode::none:
      return "0";
    case ack_mode::one:
      return "1";
    default:
      return "all";
  }
}

bool replicated_column(storage::column c) {
  // sessions: only the rows of an organization (a CRM user's page session,
  // storage/org_rows.hpp) have a shard; the others stay node-local.
  return c != storage::column::meta && c != storage::column::reminders;
}

std::string encode_held(const held_state& h) {
  return (h.rebuilding ? "r " : "") + std::to_string(h.epoch) + " "
         + std::to_string(h.seq);
}

held_state decode_held(std::string_view text) {
  held_state h;
  h.present = true;
  std::string t{text};
  if (t.compare(0, 2, "r ") == 0) {
    h.rebuilding = true;
    t = t.substr(2);
  }
  auto space = t.find(' ');
  try {
    h.epoch = std::stoll(t.substr(0, space));
    h.seq = space == std::string::npos ? 0 : std::stoull(t.substr(space + 1));
  } catch (...) {
    h.rebuilding = true; // unreadable: only a snapshot makes it known
  }
  return h;
}

/// A hooked write's shards: what await() waits for (or defer(), for
/// several writes of one actor's handler).
struct replicator::pending {
  struct part {
    uint32_t shard = 0;
    int64_t epoch = 0;
    uint64_t seq = 0;
    size_t required = 0;
    repl_entry entry;
  };
  std::vector<part> parts;
  std::chrono::steady_clock::time_point deadline;
};

/// Where a snapshot's scan of a shard's rows goes on from.
struct replicator::snapshot_cursor {
  bool listed = false; ///< prefixes read
  std::vector<std::string> prefixes;
  size_t column = 0;
  size_t prefix = 0;
  bool resume = false; ///< `after` is the last row given
  std::string after;
  bool done = false;
};

/// A snapshot a sender actor is sending: the shard as of one sequence (a
/// RocksDB snapshot taken under the commit lock), in parts.
struct replicator::snapshot_job {
  repl_snapshot head;
  std::shared_ptr<storage::read_view> view;
  snapshot_cursor cursor;
};

replicator::replicator(caf::actor_system& sys, storage::db& db,
                       std::string self, uint32_t shard_count,
                       replication_config cfg, peer_fn peer)
    : sys_(sys)
    , db_(db)
    , self_(std::move(self))
    , shard_count_(shard_count)
    , cfg_(cfg)
    , peer_(std::move(peer))
    , held_(shard_count)
    , held_loaded_(shard_count, false) {}

replicator::~replicator() {
  stop();
}

void replicator::stop() {
  std::map<std::string, sender_ref> senders;
  caf::actor acker;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
    senders.swap(senders_);
    acker = std::move(acker_);
  }
  ack_cv_.notify_all();
  for (auto& [id, s] : senders)
    caf::anon_send_exit(s.actor, caf::exit_reason::user_shutdown);
  // The writes still waiting are answered (503), then it quits.
  if (acker)
    caf::anon_send(acker, repl_stop_atom_v);
}

held_state replicator::held(uint32_t shard) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (shard >= shard_count_)
    return {};
  if (!held_loaded_[shard]) {
    std::string v;
    bool found = false;
    if (!db_.get(storage::column::meta, held_key(shard), v, found) && found)
      held_[shard] = decode_held(v);
    held_loaded_[shard] = true;
  }
  return held_[shard];
}

bool replicator::is_follower(uint32_t shard) const {
  if (!roles_known_ || shard >= roles_.followers.size())
    return false;
  auto& f = roles_.followers[shard];
  return std::find(f.begin(), f.end(), self_) != f.end();
}

void replicator::fence(uint32_t shard, const std::string& why) {
  if (primary_.erase(shard) > 0)
    log::warn("cluster: shard " + std::to_string(shard)
              + " is no longer written here: " + why);
  fenced_.insert(shard);
  acks_changed();
}

void replicator::set_roles(const map_record& in) {
  auto m = in;
  m.complete();
  if (m.shard_count() != shard_count_)
    return;
  // Stored sequences first (outside the lock: held() takes it).
  std::vector<uint32_t> mine;
  for (uint32_t s = 0; s < shard_count_; ++s)
    if (m.owners[s] == self_)
      mine.push_back(s);
  std::map<uint32_t, held_state> stored;
  for (auto s : mine)
    stored[s] = held(s);
  std::lock_guard<std::mutex> guard{mtx_};
  for (uint32_t s = 0; s < shard_count_; ++s) {
    if (m.owners[s] == self_) {
      auto& p = primary_[s];
      if (p.epoch != m.epochs[s]) {
        auto& h = stored[s];
        // A new epoch here: the sequence goes on from what is stored.
        p.epoch = m.epochs[s];
        p.next_seq = (h.rebuilding ? 0 : h.seq) + 1;
        // Followers holding exactly this go on from it (a hand-over's
        // old primary, the in-sync followers of a failover).
        bool usable = h.present && !h.rebuilding && h.epoch > 0;
        p.base_epoch = usable ? h.epoch : 0;
        p.base_seq = usable ? h.seq : 0;
        p.tail.clear();
        p.followers.clear();
        fenced_.erase(s);
        if (roles_known_)
          log::info("cluster: this node is the primary of shard "
                    + std::to_string(s) + " (epoch " + std::to_string(p.epoch)
                    + ")");
      }
      std::map<std::string, progress> kept;
      for (auto& f : m.followers[s]) {
        auto i = p.followers.find(f);
        kept[f] = i == p.followers.end() ? progress{} : i->second;
        ensure_sender(f);
      }
      p.followers = std::move(kept);
    } else if (primary_.count(s) > 0) {
      fence(s, "node " + m.owners[s] + " owns it now (epoch "
                   + std::to_string(m.epochs[s]) + ")");
    }
  }
  roles_ = std::move(m);
  roles_known_ = true;
  work_changed();
  acks_changed();
}

// -- as primary
// -------------------------------------------------------------------

caf::error replicator::prepare(const storage::write_batch& batch,
                               storage::write_batch& extra,
                               std::shared_ptr<void>& token) {
  // The shard of every replicated row (a deleted lookup row or page
  // session names its organization in the value it had).
  std::map<uint32_t, std::vector<repl_row>> parts;
  for (auto& o : batch.ops()) {
    if (!replicated_column(o.cf))
      continue;
    std::string before;
    std::string_view value = o.value;
    if (o.is_delete && !storage::keyed_by_org(o.cf)) {
      bool found = false;
      if (db_.get(o.cf, o.key, before, found) || !found)
        before.clear();
      value = before;
    }
    auto t = storage::row_tenant(o.cf, o.key, value);
    // Tenant 0 is the node's own audit log (api/org_data_api.cpp): the
    // node's, not an organization's.
    if (!t || t->value == 0)
      continue;
    parts[shard_of(*t, shard_count_)].push_back(
        repl_row{static_cast<uint8_t>(o.cf), o.is_delete, o.key, o.value});
  }
  if (parts.empty())
    return caf::none;
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [shard, rows] : parts) {
    if (frozen_.count(shard) > 0)
      return make_crm_error(crm_errc::unavailable, "node_unavailable",
                            "this organization's shard is being handed "
                            "over to another node; retry");
    if (primary_.count(shard) > 0)
      continue;
    // A deposed primary writes nothing of the shard any more; a follower
    // only deletes (the purger's expired rows, which its primary deletes
    // too): anything else would be data its primary does not have.
    bool deletes_only = std::all_of(rows.begin(), rows.end(),
                                    [](const repl_row& r) { return r.del; });
    if (fenced_.count(shard) > 0 || (is_follower(shard) && !deletes_only))
      return make_crm_error(crm_errc::unavailable, "node_unavailable",
                            "this node does not own this organization's "
                            "shard (any more); retry");
  }
  auto p = std::make_shared<pending>();
  for (auto& [shard, rows] : parts) {
    auto i = primary_.find(shard);
    if (i == primary_.end())
      continue; // a shard nobody replicates here (no role in it)
    auto& st = i->second;
    pending::part part;
    part.shard = shard;
    part.epoch = st.epoch;
    part.seq = st.next_seq++;
    auto n = st.followers.size();
    part.required = cfg_.ack == ack_mode::none  ? 0
                    : cfg_.ack == ack_mode::one ? std::min<size_t>(1, n)
                                                : n;
    part.entry.shard = shard;
    part.entry.epoch = st.epoch;
    part.entry.seq = part.seq;
    part.entry.base_epoch = st.base_epoch;
    part.entry.base_seq = st.base_seq;
    part.entry.rows = std::move(rows);
    held_state h{st.epoch, part.seq, false, true};
    extra.put(storage::column::meta, held_key(shard), encode_held(h));
    p->parts.push_back(std::move(part));
  }
  if (!p->parts.empty())
    token = p;
  return caf::none;
}

void replicator::committed(const std::shared_ptr<void>& token, bool ok) {
  auto p = std::static_pointer_cast<pending>(token);
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& part : p->parts) {
    auto i = primary_.find(part.shard);
    if (i == primary_.end() || i->second.epoch != part.epoch)
      continue;
    auto& st = i->second;
    if (!ok) {
      // Nothing was written: the number is given back (the commit lock
      // is held, so no later number was handed out).
      if (st.next_seq == part.seq + 1)
        st.next_seq = part.seq;
      continue;
    }
    held_[part.shard] = held_state{part.epoch, part.seq, false, true};
    held_loaded_[part.shard] = true;
    if (st.followers.empty())
      continue;
    st.tail.push_back(part.entry);
    while (st.tail.size() > cfg_.tail_limit)
      st.tail.pop_front();
  }
  work_changed();
}

std::optional<caf::error> replicator::settled(const pending& p, bool expired) {
  for (auto& part : p.parts) {
    if (part.required == 0)
      continue;
    auto i = primary_.find(part.shard);
    if (stopping_ || i == primary_.end() || i->second.epoch != part.epoch)
      return make_crm_error(crm_errc::unavailable, "node_unavailable",
                            "this node lost the organization's shard before "
                            "the write was replicated; retry");
    size_t have = 0;
    for (auto& [id, pr] : i->second.followers)
      if (pr.known && pr.acked >= part.seq)
        ++have;
    if (have >= part.required)
      continue;
    if (!expired)
      return std::nullopt;
    std::string seen;
    for (auto& [id, pr] : i->second.followers)
      seen += " " + id
              + (pr.known ? " holds " + std::to_string(pr.acked)
                          : std::string{" unknown"})
              + (pr.snapshot ? " (snapshot)" : "");
    log::warn("cluster: batch " + std::to_string(part.seq) + " of shard "
              + std::to_string(part.shard) + " not confirmed in time;" + seen);
    return make_crm_error(
        crm_errc::unavailable, "replication_timeout",
        "the write is stored on this node but no follower of shard "
            + std::to_string(part.shard)
            + " confirmed it in time; it may or may not last a failover; "
              "retry");
  }
  return caf::error{};
}

caf::error replicator::await(const std::shared_ptr<void>& token) {
  auto p = std::static_pointer_cast<pending>(token);
  auto deadline = std::chrono::steady_clock::now() + cfg_.ack_timeout;
  std::unique_lock<std::mutex> lk{mtx_};
  std::optional<caf::error> answer;
  ack_cv_.wait_until(lk, deadline,
                     [&] { return (answer = settled(*p, false)).has_value(); });
  if (!answer)
    answer = settled(*p, true);
  return std::move(*answer);
}

storage::ack_ticket
replicator::defer(const std::vector<std::shared_ptr<void>>& tokens) {
  auto all = std::make_shared<pending>();
  for (auto& t : tokens)
    for (auto& part : std::static_pointer_cast<pending>(t)->parts)
      if (part.required > 0) {
        pending::part q; // the number counts; the rows are in the tail
        q.shard = part.shard;
        q.epoch = part.epoch;
        q.seq = part.seq;
        q.required = part.required;
        all->parts.push_back(std::move(q));
      }
  storage::ack_ticket ticket;
  if (all->parts.empty())
    return ticket;
  all->deadline = std::chrono::steady_clock::now() + cfg_.ack_timeout;
  std::lock_guard<std::mutex> guard{mtx_};
  ticket.acknowledger = acknowledger();
  if (!ticket.acknowledger) // stopping
    return ticket;
  ticket.id = next_wait_++;
  ticket.timeout = cfg_.ack_timeout;
  waits_.emplace(ticket.id, std::move(all));
  return ticket;
}

std::chrono::milliseconds replicator::wait_left(uint64_t id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = waits_.find(id);
  if (i == waits_.end())
    return std::chrono::milliseconds{0};
  auto left = i->second->deadline - std::chrono::steady_clock::now();
  return std::max(std::chrono::milliseconds{0},
                  std::chrono::duration_cast<std::chrono::milliseconds>(left));
}

std::optional<caf::error> replicator::settle_wait(uint64_t id, bool expired) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = waits_.find(id);
  if (i == waits_.end())
    return make_crm_error(crm_errc::unavailable, "node_unavailable",
                          "the write's replication is not known here; retry");
  auto answer = settled(*i->second, expired);
  if (answer)
    waits_.erase(i);
  return answer;
}

void replicator::acks_changed() {
  ack_cv_.notify_all();
  if (acker_ && !acks_kicked_.exchange(true))
    caf::anon_send(acker_, repl_acked_atom_v);
}

void replicator::work_changed() {
  for (auto& [id, s] : senders_)
    if (!s.kicked->exchange(true))
      caf::anon_send(s.actor, repl_kick_atom_v);
}

caf::error replicator::shard_rows_of(
    uint32_t shard, const storage::read_view* at,
    const std::function<void(storage::column, std::string_view,
                             std::string_view)>& fn) {
  snapshot_cursor all;
  return shard_rows_from(
      shard, at, all,
      [&](storage::column c, std::string_view k, std::string_view v) {
        fn(c, k, v);
        return true;
      });
}

caf::error replicator::shard_rows_from(
    uint32_t shard, const storage::read_view* at, snapshot_cursor& cur,
    const std::function<bool(storage::column, std::string_view,
                             std::string_view)>& fn) {
  if (!cur.listed) {
    auto err = storage::scan_at(
        db_, storage::column::orgs, "", "",
        [&](std::string_view k, std::string_view) {
          if (k.size() == 8 && storage::keys::get_be64(k, 0) != 0
              && shard_of(tenant_id{storage::keys::get_be64(k, 0)},
                          shard_count_)
                     == shard)
            cur.prefixes.emplace_back(k);
          return true;
        },
        at);
    if (err)
      return err;
    cur.listed = true;
  }
  bool stopped = false;
  // Scans [begin, end) of a column from where the cursor is, giving the
  // rows `keep` accepts to fn.
  auto scan = [&](storage::column col, const std::string& begin,
                  const std::string& end, auto keep) {
    std::string from = begin;
    if (cur.resume && cur.after >= begin) {
      from = cur.after;
      from.push_back('\0'); // the first key after it
    }
    return storage::scan_at(
        db_, col, from, end,
        [&](std::string_view k, std::string_view v) {
          if (!keep(k, v))
            return true;
          cur.resume = true;
          cur.after.assign(k.data(), k.size());
          stopped = !fn(col, k, v);
          return !stopped;
        },
        at);
  };
  for (; cur.column < storage::column_count; ++cur.column) {
    auto col = static_cast<storage::column>(cur.column);
    if (!replicated_column(col))
      continue;
    if (!storage::keyed_by_org(col)) {
      auto err = scan(col, "", "", [&](std::string_view k, std::string_view v) {
        auto t = storage::row_tenant(col, k, v);
        return t && t->value != 0 && shard_of(*t, shard_count_) == shard;
      });
      if (err || stopped)
        return err;
      cur.resume = false;
      continue;
    }
    for (; cur.prefix < cur.prefixes.size(); ++cur.prefix) {
      auto& pre = cur.prefixes[cur.prefix];
      auto err = scan(col, pre, storage::keys::prefix_end(pre),
                      [](std::string_view, std::string_view) { return true; });
      if (err || stopped)
        return err;
      cur.resume = false;
    }
    cur.prefix = 0;
  }
  cur.done = true;
  return caf::none;
}

bool replicator::begin_snapshot(uint32_t shard, snapshot_job& job) {
  job = snapshot_job{};
  job.head.shard = shard;
  bool mine = false;
  job.view = storage::view_under_commit_lock(db_, [&] {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = primary_.find(shard);
    if (i == primary_.end())
      return;
    mine = true;
    job.head.epoch = i->second.epoch;
    job.head.seq = i->second.next_seq - 1;
  });
  if (mine)
    metrics::node().snapshot_sent();
  return mine;
}

caf::error replicator::snapshot_rows(snapshot_job& job,
                                     std::vector<repl_row>& rows) {
  size_t bytes = 0;
  return shard_rows_from(
      job.head.shard, job.view.get(), job.cursor,
      [&](storage::column c, std::string_view k, std::string_view v) {
        rows.push_back(repl_row{static_cast<uint8_t>(c), false, std::string{k},
                                std::string{v}});
        bytes += k.size() + v.size();
        return bytes < chunk_bytes;
      });
}

void replicator::snapshot_held(const std::string& peer,
                               const snapshot_job& job) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = primary_.find(job.head.shard);
  if (i == primary_.end() || i->second.epoch != job.head.epoch)
    return;
  auto f = i->second.followers.find(peer);
  if (f == i->second.followers.end())
    return; // no longer a follower
  auto& pr = f->second;
  pr.acked = job.head.seq;
  pr.known = true;
  pr.snapshot = false;
  trim(i->second);
  log::info("cluster: node " + peer + " holds shard "
            + std::to_string(job.head.shard) + " from a snapshot at sequence "
            + std::to_string(job.head.seq));
  acks_changed();
}

void replicator::trim(primary_state& st) {
  uint64_t floor = UINT64_MAX;
  for (auto& [id, pr] : st.followers) {
    if (!pr.known || pr.snapshot)
      return; // it may still need the tail
    floor = std::min(floor, pr.acked);
  }
  while (!st.tail.empty() && st.tail.front().seq <= floor)
    st.tail.pop_front();
}

replicator::plan replicator::plan_for(const std::string& peer) {
  plan out;
  std::lock_guard<std::mutex> guard{mtx_};
  if (stopping_)
    return out;
  for (auto& [shard, st] : primary_) {
    auto f = st.followers.find(peer);
    if (f == st.followers.end())
      continue;
    auto& pr = f->second;
    if (pr.snapshot) {
      out.snapshots.push_back(shard);
      continue;
    }
    if (!pr.known) {
      out.unknown.push_back(shard);
      continue;
    }
    if (st.next_seq - 1 <= pr.acked)
      continue;
    if (st.tail.empty() || st.tail.front().seq > pr.acked + 1) {
      pr.snapshot = true; // behind what is kept
      out.snapshots.push_back(shard);
      continue;
    }
    for (auto& e : st.tail)
      if (e.seq > pr.acked && out.push.entries.size() < push_entries)
        out.push.entries.push_back(e);
  }
  return out;
}

void replicator::absorb(const std::string& peer, const repl_results& got) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& r : got.items) {
    auto i = primary_.find(r.shard);
    if (i == primary_.end())
      continue;
    auto& st = i->second;
    auto f = st.followers.find(peer);
    if (f == st.followers.end())
      continue;
    auto& pr = f->second;
    switch (r.status) {
      case repl_result::ok:
      case repl_result::gap:
        // What it holds of this epoch, up to what was written here: the
        // tail goes on from there; anything else needs a snapshot.
        if (r.epoch == st.epoch && r.applied <= st.next_seq - 1) {
          pr.acked = r.applied;
          pr.known = true;
        } else if (r.status == repl_result::ok && st.base_epoch > 0
                   && r.epoch == st.base_epoch && r.applied == st.base_seq) {
          // It holds what this node held when its epoch began: the tail
          // of this epoch goes on from there (t15-balance).
          pr.acked = r.applied;
          pr.known = true;
        } else {
          pr.snapshot = true;
        }
        break;
      case repl_result::rebuild:
        pr.snapshot = true;
        break;
      case repl_result::stale:
        // The follower knows a newer owner: this node was deposed.
        fence(r.shard,
              "node " + peer + " knows epoch " + std::to_string(r.epoch));
        continue;
      default:
        pr.known = false;
    }
    trim(st);
  }
  acks_changed();
}

// -- the replicator's actors (t15-ack): no thread of the actor system, and
// no thread of the replicator's own, waits for a follower.

struct repl_actors {
  using wptr = std::weak_ptr<replicator>;

  struct sender_state {
    std::string peer;
    std::shared_ptr<std::atomic<bool>> kicked;
    bool busy = false;         ///< a request to the follower is out
    bool retry_queued = false; ///< a delayed kick is on its way
    bool snapshot_turn = false;
    std::optional<replicator::snapshot_job> job;
    uint8_t next_phase = repl_snapshot::begin;
  };
  using sender_ptr = caf::stateful_actor<sender_state>*;

  /// One follower node's sender: asks what it holds, ships the tail in
  /// commit order, sends snapshots in parts; one request out at a time,
  /// then the next step. Idle until a kick (new batches or roles).
  static caf::behavior sender(sender_ptr self, wptr rep, std::string peer,
                              std::shared_ptr<std::atomic<bool>> kicked) {
    self->state.peer = std::move(peer);
    self->state.kicked = std::move(kicked);
    return {
        [=](repl_kick_atom) {
          self->state.kicked->store(false);
          step(self, rep);
        },
        [=](repl_expire_atom) {
          self->state.retry_queued = false;
          step(self, rep);
        },
    };
  }

  static void retry_later(sender_ptr self) {
    self->state.busy = false;
    if (self->state.retry_queued)
      return;
    self->state.retry_queued = true;
    self->delayed_send(self, retry_after, repl_expire_atom_v);
  }

  /// One request to the follower; `ok` takes the answer and says whether
  /// to go on at once (else a retry after a while).
  template <class Answer, class Msg, class Ok>
  static void exchange(sender_ptr self, const wptr& rep, const caf::actor& h,
                       Msg msg, Ok ok) {
    self->state.busy = true;
    self->request(h, exchange_timeout, replicate_atom_v, std::move(msg))
        .then(
            [=](Answer& a) mutable {
              self->state.busy = false;
              auto r = rep.lock();
              if (!r)
                return;
              if (ok(*r, a))
                step(self, rep);
              else
                retry_later(self);
            },
            [=](caf::error&) { retry_later(self); });
  }

  static void step(sender_ptr self, const wptr& rep) {
    auto& st = self->state;
    if (st.busy)
      return;
    auto r = rep.lock();
    if (!r) {
      self->quit();
      return;
    }
    auto todo = r->plan_for(st.peer);
    if (todo.empty() && !st.job)
      return; // until the next kick
    auto h = r->peer_(st.peer);
    if (!h) {
      retry_later(self);
      return;
    }
    auto absorb = [peer = st.peer](replicator& rr, repl_results& got) {
      rr.absorb(peer, got);
      return true;
    };
    // Followers not asked yet say what they hold.
    if (!todo.unknown.empty()) {
      exchange<repl_results>(self, rep, h, repl_status_ask{todo.unknown},
                             absorb);
      return;
    }
    bool snapshots = st.job || !todo.snapshots.empty();
    bool pushes = !todo.push.entries.empty();
    // Batches and snapshot parts take turns: neither waits for the other.
    if (pushes && (!snapshots || !st.snapshot_turn)) {
      st.snapshot_turn = true;
      exchange<repl_results>(self, rep, h, std::move(todo.push), absorb);
      return;
    }
    st.snapshot_turn = false;
    snapshot_part(self, rep, *r, h, todo.snapshots);
  }

  static void snapshot_part(sender_ptr self, const wptr& rep, replicator& r,
                            const caf::actor& h,
                            const std::vector<uint32_t>& wanted) {
    auto& st = self->state;
    if (!st.job) {
      if (wanted.empty())
        return;
      replicator::snapshot_job job;
      if (!r.begin_snapshot(wanted.front(), job))
        return; // not this node's any more: the next plan knows
      st.job = std::move(job);
      st.next_phase = repl_snapshot::begin;
    }
    auto& job = *st.job;
    repl_snapshot part = job.head;
    part.phase = st.next_phase;
    if (part.phase == repl_snapshot::rows_part) {
      if (auto err = r.snapshot_rows(job, part.rows)) {
        log::warn("cluster: cannot read shard " + std::to_string(job.head.shard)
                  + " for a snapshot: " + to_api_error(err).message);
        st.job.reset();
        retry_later(self);
        return;
      }
      if (part.rows.empty() && job.cursor.done)
        part.phase = repl_snapshot::end;
    }
    auto phase = part.phase;
    exchange<repl_result>(self, rep, h, std::move(part),
                          [self, phase](replicator& rr, repl_result& got) {
                            auto& s = self->state;
                            if (!s.job)
                              return true;
                            if (got.status != repl_result::ok) {
                              log::warn("cluster: the snapshot of shard "
                                        + std::to_string(s.job->head.shard)
                                        + " for node " + s.peer
                                        + " did not complete; retrying");
                              s.job.reset();
                              return false;
                            }
                            if (phase == repl_snapshot::end) {
                              rr.snapshot_held(s.peer, *s.job);
                              s.job.reset();
                            } else {
                              s.next_phase = repl_snapshot::rows_part;
                            }
                            return true;
                          });
  }

  struct acker_state {
    struct waiting {
      caf::response_promise promise;
      caf::message answer;
    };
    std::map<uint64_t, waiting> waits;
  };
  using acker_ptr = caf::stateful_actor<acker_state>*;

  static caf::error stopping() {
    return make_crm_error(crm_errc::unavailable, "node_unavailable",
                          "this node is stopping; retry");
  }

  /// Answers the writes of defer() for the actor that made them (the
  /// request is delegated here): with the actor's answer once the
  /// followers confirmed, or with the error when the shard was lost or at
  /// the deadline (a delayed message, not a waiting thread).
  static caf::behavior acker(acker_ptr self, wptr rep) {
    auto answer = [](acker_state::waiting& w, caf::error& err) {
      if (err)
        w.promise.deliver(std::move(err));
      else
        w.promise.deliver(std::move(w.answer));
    };
    return {
        [=](repl_wait_atom, uint64_t id,
            caf::message& value) -> caf::response_promise {
          acker_state::waiting w{self->make_response_promise(),
                                 std::move(value)};
          auto rp = w.promise;
          auto r = rep.lock();
          if (!r) {
            auto err = stopping();
            answer(w, err);
            return rp;
          }
          if (auto done = r->settle_wait(id, false)) {
            answer(w, *done);
            return rp;
          }
          auto left = r->wait_left(id);
          self->state.waits.emplace(id, std::move(w));
          self->delayed_send(self, left, repl_expire_atom_v, id);
          return rp;
        },
        [=](repl_acked_atom) {
          auto r = rep.lock();
          if (!r)
            return;
          r->acks_kicked_.store(false);
          auto& waits = self->state.waits;
          for (auto i = waits.begin(); i != waits.end();) {
            if (auto done = r->settle_wait(i->first, false)) {
              answer(i->second, *done);
              i = waits.erase(i);
            } else {
              ++i;
            }
          }
        },
        [=](repl_expire_atom, uint64_t id) {
          auto i = self->state.waits.find(id);
          if (i == self->state.waits.end())
            return;
          auto r = rep.lock();
          auto done = r ? r->settle_wait(id, true)
                        : std::optional<caf::error>{stopping()};
          answer(i->second, *done);
          self->state.waits.erase(i);
        },
        [=](repl_stop_atom) {
          for (auto& [id, w] : self->state.waits)
            w.promise.deliver(stopping());
          self->state.waits.clear();
          self->quit();
        },
    };
  }
};

void replicator::ensure_sender(const std::string& peer) {
  if (stopping_ || senders_.count(peer) > 0)
    return;
  sender_ref ref;
  ref.kicked = std::make_shared<std::atomic<bool>>(true);
  ref.actor
      = sys_.spawn(repl_actors::sender, weak_from_this(), peer, ref.kicked);
  caf::anon_send(ref.actor, repl_kick_atom_v);
  senders_.emplace(peer, std::move(ref));
}

caf::actor replicator::acknowledger() {
  if (stopping_)
    return {};
  if (!acker_)
    acker_ = sys_.spawn(repl_actors::acker, weak_from_this());
  return acker_;
}

// -- as follower
// ------------------------------------------------------------------

bool replicator::row_in_shard(const repl_row& r, uint32_t shard) const {
  if (r.column >= storage::column_count)
    return false;
  auto col = static_cast<storage::column>(r.column);
  if (!replicated_column(col))
    return false;
  auto of_shard = [&](std::string_view value) {
    auto t = storage::row_tenant(col, r.key, value);
    return t && t->value != 0 && shard_of(*t, shard_count_) == shard;
  };
  if (col == storage::column::sessions) {
    // A page session is keyed by its cookie's hash alone: the row this
    // node holds under the key, if any, must be of the shard too, so a
    // primary can neither replace nor delete a session of another shard
    // or one of this node's own (t15-sessions).
    std::string held;
    bool found = false;
    if (db_.get(col, r.key, held, found))
      return false;
    if (found && !of_shard(held))
      return false;
    if (r.del)
      return true;
  } else if (r.del && col == storage::column::lookup) {
    return true; // its value is gone; the key is the primary's word
  }
  return of_shard(r.value);
}

caf::error replicator::write_held(uint32_t shard, const held_state& h,
                                  storage::write_batch& b) {
  b.put(storage::column::meta, held_key(shard), encode_held(h));
  storage::unreplicated_scope bypass;
  auto err = db_.write(b, storage::claims_effect::keep);
  if (!err) {
    std::lock_guard<std::mutex> guard{mtx_};
    held_[shard] = h;
    held_[shard].present = true;
    held_loaded_[shard] = true;
  }
  return err;
}

namespace {

/// A batch of a newer epoch whose primary began it from exactly what this
/// follower holds: the same history (one primary per epoch numbers its
/// batches), so it goes on without a snapshot (t15-balance).
bool continues(const held_state& h, const repl_entry& e) {
  return h.present && !h.rebuilding && e.epoch > h.epoch && e.base_epoch > 0
         && e.base_epoch == h.epoch && e.base_seq == h.seq && e.seq > h.seq;
}

} // namespace

repl_results replicator::apply_push(const std::string& sender, repl_push& p) {
  repl_results out;
  std::map<uint32_t, repl_result> last;
  std::set<uint32_t> stopped; // a shard whose earlier entry was not applied
  for (auto& e : p.entries) {
    repl_result r;
    r.shard = e.shard;
    if (sender.empty() || e.shard >= shard_count_) {
      r.status = repl_result::refused;
      last[e.shard] = r;
      continue;
    }
    if (stopped.count(e.shard) > 0)
      continue;
    auto h = held(e.shard);
    int64_t known = h.epoch;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (roles_known_)
        known = std::max(known, roles_.epochs[e.shard]);
    }
    r.epoch = std::max(known, h.epoch);
    r.applied = h.seq;
    if (e.epoch < known) {
      r.status = repl_result::stale;
      log::warn("cluster: refused a batch of shard " + std::to_string(e.shard)
                + " from " + sender + " with epoch " + std::to_string(e.epoch)
                + " (this node knows epoch " + std::to_string(known) + ")");
    } else if (e.epoch != h.epoch ? !continues(h, e)
                                  : (!h.present || h.rebuilding)) {
      r.status = repl_result::rebuild;
    } else if (e.seq <= h.seq) {
      r.status = repl_result::ok;
    } else if (e.seq > h.seq + 1) {
      r.status = repl_result::gap;
    } else {
      storage::write_batch b;
      bool valid = true;
      for (auto& row : e.rows) {
        if (!row_in_shard(row, e.shard)) {
          valid = false;
          break;
        }
        auto col = static_cast<storage::column>(row.column);
        if (row.del)
          b.del(col, row.key);
        else
          b.put(col, row.key, row.value);
      }
      if (!valid) {
        r.status = repl_result::refused;
        log::warn("cluster: refused a batch from " + sender
                  + " with rows that are not of shard "
                  + std::to_string(e.shard));
      } else if (write_held(e.shard, held_state{e.epoch, e.seq, false, true},
                            b)) {
        r.status = repl_result::refused;
      } else {
        r.status = repl_result::ok;
        r.applied = e.seq;
        r.epoch = e.epoch;
      }
    }
    if (r.status != repl_result::ok)
      stopped.insert(e.shard);
    last[e.shard] = r;
  }
  for (auto& [shard, r] : last)
    out.items.push_back(r);
  return out;
}

repl_result replicator::apply_snapshot(const std::string& sender,
                                       repl_snapshot& s) {
  repl_result r;
  r.shard = s.shard;
  r.status = repl_result::refused;
  if (sender.empty() || s.shard >= shard_count_)
    return r;
  auto h = held(s.shard);
  int64_t known = h.epoch;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (roles_known_)
      known = std::max(known, roles_.epochs[s.shard]);
    if (primary_.count(s.shard) > 0)
      return r; // this node is the primary: nobody rebuilds it
  }
  r.epoch = known;
  r.applied = h.seq;
  if (s.epoch < known) {
    r.status = repl_result::stale;
    return r;
  }
  storage::write_batch b;
  if (s.phase == repl_snapshot::begin) {
    // What this node held of the shard goes (an unacknowledged tail of a
    // deposed primary included).
    auto err
        = shard_rows_of(s.shard, nullptr,
                        [&](storage::column c, std::string_view k,
                            std::string_view) { b.del(c, std::string{k}); });
    if (err)
      return r;
    if (write_held(s.shard, held_state{s.epoch, 0, true, true}, b))
      return r;
  } else {
    if (!h.rebuilding || h.epoch != s.epoch)
      return r; // a part without its beginning
    for (auto& row : s.rows) {
      if (row.del || !row_in_shard(row, s.shard))
        return r;
      b.put(static_cast<storage::column>(row.column), std::move(row.key),
            std::move(row.value));
    }
    bool last = s.phase == repl_snapshot::end;
    if (write_held(s.shard, held_state{s.epoch, last ? s.seq : 0, !last, true},
                   b))
      return r;
    if (last)
      log::info("cluster: rebuilt shard " + std::to_string(s.shard) + " from "
                + sender + " (epoch " + std::to_string(s.epoch) + ", sequence "
                + std::to_string(s.seq) + ")");
  }
  r.status = repl_result::ok;
  r.epoch = s.epoch;
  r.applied = s.phase == repl_snapshot::end ? s.seq : 0;
  return r;
}

repl_results replicator::status(const repl_status_ask& ask) {
  repl_results out;
  for (auto shard : ask.shards) {
    if (shard >= shard_count_)
      continue;
    auto h = held(shard);
    repl_result r;
    r.shard = shard;
    r.epoch = h.epoch;
    r.applied = h.seq;
    r.status
        = h.present && !h.rebuilding ? repl_result::ok : repl_result::rebuild;
    out.items.push_back(r);
  }
  return out;
}

// -- failover and repairs
// ----------------------------------------------------------

void replicator::discard(uint32_t shard) {
  storage::write_batch b;
  auto err = shard_rows_of(shard, nullptr,
                           [&](storage::column c, std::string_view k,
                               std::string_view) { b.del(c, std::string{k}); });
  if (err)
    return;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    // Only while it still has no role here (a new map may have come).
    if (primary_.count(shard) > 0 || is_follower(shard)
        || roles_.owners[shard] == self_)
      return;
  }
  b.del(storage::column::meta, held_key(shard));
  storage::unreplicated_scope bypass;
  if (auto werr = db_.write(b, storage::claims_effect::keep)) {
    log::error("cluster: cannot remove the copy of shard "
               + std::to_string(shard) + ": " + to_api_error(werr).message);
    return;
  }
  std::lock_guard<std::mutex> guard{mtx_};
  held_[shard] = held_state{};
  held_loaded_[shard] = true;
  log::info("cluster: removed this node's copy of shard "
            + std::to_string(shard) + " (" + std::to_string(b.size() - 1)
            + " rows): node " + roles_.owners[shard] + " holds it now");
}

void replicator::coordinate(etcd_membership& membership,
                            const std::set<std::string>& live) {
  map_record m;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!roles_known_ || stopping_)
      return;
    m = roles_;
  }
  // Copies of shards this node has no role in any more (a deposed or
  // returning primary's, with its unacknowledged tail; a follower that
  // was replaced) go: only the shard's primary and followers hold it.
  for (uint32_t s = 0; s < m.shard_count(); ++s) {
    auto& f = m.followers[s];
    if (m.owners[s] == self_ || std::find(f.begin(), f.end(), self_) != f.end()
        || !held(s).present)
      continue;
    discard(s);
  }
  // Shards whose owner is gone and that this node follows: the follower
  // holding the most takes each (ties: the smaller id).
  std::map<std::string, std::vector<uint32_t>> ask; // co-follower -> shards
  std::vector<uint32_t> orphans;
  for (uint32_t s = 0; s < m.shard_count(); ++s) {
    if (live.count(m.owners[s]) > 0 || m.owners[s] == self_)
      continue;
    auto& f = m.followers[s];
    if (std::find(f.begin(), f.end(), self_) == f.end())
      continue;
    orphans.push_back(s);
    for (auto& id : f)
      if (id != self_ && live.count(id) > 0)
        ask[id].push_back(s);
  }
  std::map<uint32_t, bool> beaten;
  if (!ask.empty()) {
    caf::scoped_actor self{sys_};
    for (auto& [id, shards] : ask) {
      auto h = peer_(id);
      if (!h)
        continue; // not reachable: it cannot serve either
      self->request(h, exchange_timeout, replicate_atom_v,
                    repl_status_ask{shards})
          .receive(
              [&](repl_results& r) {
                for (auto& x : r.items) {
                  if (x.status != repl_result::ok)
                    continue;
                  auto mine = held(x.shard);
                  if (x.epoch > mine.epoch
                      || (x.epoch == mine.epoch
                          && (x.applied > mine.seq
                              || (x.applied == mine.seq && id < self_))))
                    beaten[x.shard] = true;
                }
              },
              [&](caf::error&) {});
    }
  }
  std::vector<uint32_t> take;
  for (auto s : orphans) {
    auto h = held(s);
    if (beaten[s])
      continue;
    if (!h.present || h.rebuilding) {
      log::warn("cluster: shard " + std::to_string(s)
                + " lost its primary, but this follower is still being "
                  "rebuilt: not taking it");
      continue;
    }
    take.push_back(s);
  }
  bool repair = false;
  {
    map_record probe = m;
    repair = repair_followers(probe, self_, live, cfg_.factor);
  }
  if (take.empty() && !repair)
    return;
  auto res = membership.update_map(
      [&](map_record& cur, bool& changed) -> caf::error {
        for (auto s : take) {
          if (s >= cur.shard_count() || live.count(cur.owners[s]) > 0
              || cur.epochs[s] != m.epochs[s])
            continue; // someone else moved first
          take_ownership(cur, s, self_);
          changed = true;
        }
        changed = repair_followers(cur, self_, live, cfg_.factor) || changed;
        return caf::none;
      });
  if (!res) {
    log::warn("cluster: could not update the shard map in etcd: "
              + to_api_error(res.error()).message);
    return;
  }
  // The map written is this node's already (update_map handed it over).
  if (*res != 0 && !take.empty())
    log::warn("cluster: took over " + std::to_string(take.size())
              + " shard(s) whose primary is gone (map revision "
              + std::to_string(*res) + ")");
}

// -- hand-overs and the rebalancer (t15-balance)
// ---------------------------------------------------------------------------

map_record replicator::roles() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return roles_known_ ? roles_ : map_record{};
}

std::set<std::string> replicator::caught_up(uint32_t shard) const {
  std::set<std::string> out;
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = primary_.find(shard);
  if (i == primary_.end())
    return out;
  for (auto& [id, pr] : i->second.followers)
    if (pr.known && !pr.snapshot)
      out.insert(id);
  return out;
}

void replicator::freeze(uint32_t shard) {
  std::lock_guard<std::mutex> guard{mtx_};
  frozen_.insert(shard);
}

void replicator::thaw(uint32_t shard) {
  std::lock_guard<std::mutex> guard{mtx_};
  frozen_.erase(shard);
}

caf::error
replicator::await_in_sync(uint32_t shard, const std::string& follower,
                          std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> guard{mtx_};
  work_changed(); // a sender resting after a failure tries now
  for (;;) {
    auto i = primary_.find(shard);
    if (i == primary_.end() || stopping_)
      return make_crm_error(crm_errc::unavailable, "node_unavailable",
                            "this node no longer owns the shard; retry");
    auto f = i->second.followers.find(follower);
    if (f == i->second.followers.end())
      return make_crm_error(crm_errc::unavailable, "node_unavailable",
                            "node " + follower
                                + " is no follower of the shard; retry");
    auto& pr = f->second;
    if (pr.known && !pr.snapshot && pr.acked + 1 == i->second.next_seq)
      return caf::none;
    if (ack_cv_.wait_until(guard, deadline) == std::cv_status::timeout
        && std::chrono::steady_clock::now() >= deadline)
      return make_crm_error(crm_errc::unavailable, "busy",
                            "node " + follower
                                + " did not catch up with the shard in "
                                  "time; retry");
  }
}

// -- views
// ---------------------------------------------------------------------------

void replicator::describe_shard(json::writer& w, uint32_t shard) {
  auto h = held(shard);
  std::lock_guard<std::mutex> guard{mtx_};
  w.key("epoch");
  if (roles_known_)
    w.value(roles_.epochs[shard]);
  else
    w.null();
  w.key("followers").begin_array();
  if (roles_known_)
    for (auto& f : roles_.followers[shard])
      w.value(f);
  w.end_array();
  auto i = primary_.find(shard);
  w.key("role").value(i != primary_.end()  ? "primary"
                      : is_follower(shard) ? "follower"
                                           : "none");
  w.key("sequence").value(h.present && !h.rebuilding ? h.seq : uint64_t{0});
  if (h.rebuilding)
    w.key("rebuilding").value(true);
  if (i == primary_.end())
    return;
  uint64_t current = i->second.next_seq - 1;
  uint64_t worst = 0;
  w.key("replicas").begin_array();
  for (auto& [id, pr] : i->second.followers) {
    w.begin_object();
    w.key("node").value(id);
    w.key("acked_sequence");
    if (pr.known)
      w.value(pr.acked);
    else
      w.null();
    uint64_t lag
        = pr.known && pr.acked <= current ? current - pr.acked : current;
    w.key("lag").value(lag);
    w.key("rebuilding").value(pr.snapshot);
    w.end_object();
    worst = std::max(worst, lag);
  }
  w.end_array();
  w.key("lag").value(worst);
}

void replicator::describe(json::writer& w) {
  std::lock_guard<std::mutex> guard{mtx_};
  w.key("replication").begin_object();
  w.key("factor").value(static_cast<uint64_t>(cfg_.factor));
  w.key("ack").value(ack_mode_name(cfg_.ack));
  uint64_t followed = 0;
  for (uint32_t s = 0; s < shard_count_; ++s)
    followed += is_follower(s) ? 1 : 0;
  w.key("primary_shards").value(static_cast<uint64_t>(primary_.size()));
  w.key("follower_shards").value(followed);
  uint64_t worst = 0;
  for (auto& [shard, st] : primary_)
    for (auto& [id, pr] : st.followers) {
      uint64_t current = st.next_seq - 1;
      worst
          = std::max(worst, pr.known && pr.acked <= current ? current - pr.acked
                                                            : current);
    }
  w.key("max_lag").value(worst);
  w.key("fenced_shards").value(static_cast<uint64_t>(fenced_.size()));
  w.end_object();
}

} // namespace crmsync::cluster
