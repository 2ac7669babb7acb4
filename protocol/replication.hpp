// Messages of shard replication between nodes (cluster/replication.hpp,
// ADR 0008): a primary ships each committed batch of a shard, in commit
// order, with the shard's sequence number and the fencing epoch of its
// ownership; a follower applies them in order and answers what it holds.
// t15-repl.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

namespace crmsync {

/// One write of a replicated batch: a put, or a delete (`del`).
struct repl_row {
  uint8_t column = 0;
  bool del = false;
  std::string key;
  std::string value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, repl_row& x) {
  return f(caf::meta::type_name("repl_row"), x.column, x.del, x.key, x.value);
}

/// One committed batch of one shard: the shard's `seq`-th write under the
/// ownership of `epoch`. `base_epoch` and `base_seq` say what the primary
/// held when its epoch began (0 and 0: unknown): a follower holding
/// exactly that goes on with the new epoch without a snapshot (t15-balance).
struct repl_entry {
  uint32_t shard = 0;
  int64_t epoch = 0;
  uint64_t seq = 0;
  std::vector<repl_row> rows;
  int64_t base_epoch = 0;
  uint64_t base_seq = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, repl_entry& x) {
  return f(caf::meta::type_name("repl_entry"), x.shard, x.epoch, x.seq, x.rows,
           x.base_epoch, x.base_seq);
}

/// Batches for one follower, in commit order per shard.
struct repl_push {
  std::vector<repl_entry> entries;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, repl_push& x) {
  return f(caf::meta::type_name("repl_push"), x.entries);
}

/// What a follower holds of a shard after a push or a snapshot part.
struct repl_result {
  enum status_t : uint8_t {
    ok = 0,      ///< applied (or held already) up to `applied`
    gap = 1,     ///< an earlier batch is missing: send from applied + 1
    rebuild = 2, ///< another epoch, or nothing held: a snapshot is needed
    stale = 3,   ///< the epoch is older than one this node knows: refused
    refused = 4, ///< not from a member, or a malformed row
  };
  uint32_t shard = 0;
  uint8_t status = ok;
  int64_t epoch = 0;
  uint64_t applied = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, repl_result& x) {
  return f(caf::meta::type_name("repl_result"), x.shard, x.status, x.epoch,
           x.applied);
}

struct repl_results {
  std::vector<repl_result> items;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, repl_results& x) {
  return f(caf::meta::type_name("repl_results"), x.items);
}

/// A part of a shard's snapshot: `begin` drops what the follower held of
/// the shard, `rows` are stored, `end` makes the follower hold the shard
/// at (`epoch`, `seq`).
struct repl_snapshot {
  enum phase_t : uint8_t { begin = 0, rows_part = 1, end = 2 };
  uint32_t shard = 0;
  int64_t epoch = 0;
  uint64_t seq = 0;
  uint8_t phase = begin;
  std::vector<repl_row> rows;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, repl_snapshot& x) {
  return f(caf::meta::type_name("repl_snapshot"), x.shard, x.epoch, x.seq,
           x.phase, x.rows);
}

/// Asks a node what it holds of these shards (a failover's election).
struct repl_status_ask {
  std::vector<uint32_t> shards;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, repl_status_ask& x) {
  return f(caf::meta::type_name("repl_status_ask"), x.shards);
}

} // namespace crmsync

// A type-id block of its own, after a gap (CAF allows gaps): adding these
// to protocol/type_ids.hpp would rebuild every file of the project, and
// only crmsyncd's cluster endpoint sends or takes them. Registered by
// cluster::prepare_actor_system (register_replication_types).
CAF_BEGIN_TYPE_ID_BLOCK(crmsync_repl, caf::first_custom_type_id + 1000)
  CAF_ADD_ATOM(crmsync_repl, crmsync::atom, replicate_atom, "replicate")
  CAF_ADD_TYPE_ID(crmsync_repl, (crmsync::repl_row))
  CAF_ADD_TYPE_ID(crmsync_repl, (crmsync::repl_entry))
  CAF_ADD_TYPE_ID(crmsync_repl, (crmsync::repl_push))
  CAF_ADD_TYPE_ID(crmsync_repl, (crmsync::repl_result))
  CAF_ADD_TYPE_ID(crmsync_repl, (crmsync::repl_results))
  CAF_ADD_TYPE_ID(crmsync_repl, (crmsync::repl_snapshot))
  CAF_ADD_TYPE_ID(crmsync_repl, (crmsync::repl_status_ask))
  // t15-ack: the replicator's own actors (never sent between nodes): a
  // write's acknowledgement asked for, new batches for a sender, followers
  // that confirmed, a wait's deadline, the replicator stopping.
  CAF_ADD_ATOM(crmsync_repl, crmsync::atom, repl_wait_atom, "replwait")
  CAF_ADD_ATOM(crmsync_repl, crmsync::atom, repl_kick_atom, "replkick")
  CAF_ADD_ATOM(crmsync_repl, crmsync::atom, repl_acked_atom, "replacked")
  CAF_ADD_ATOM(crmsync_repl, crmsync::atom, repl_expire_atom, "replexpire")
  CAF_ADD_ATOM(crmsync_repl, crmsync::atom, repl_stop_atom, "replstop")
CAF_END_TYPE_ID_BLOCK(crmsync_repl)

namespace crmsync {

/// Registers the replication messages on a config (with register_types).
inline void register_replication_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::crmsync_repl>();
}

} // namespace crmsync
