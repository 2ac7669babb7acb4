// Messages between the nodes of a cluster (cluster/): an HTTP request
// forwarded to the node that owns its tenant and the answer coming back,
// and reads of one key of the node-local tables that are not keyed by
// tenant (global lookups, sign-in states, sessions).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace crmsync {

/// An HTTP request as the receiving node read it.
struct http_forward {
  std::string method;
  std::string target; // path and query, as sent
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string via;    // the node that received it
  std::string remote; // the client's address as that node saw it
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_forward& x) {
  return f(caf::meta::type_name("http_forward"), x.method, x.target, x.headers,
           x.body, x.via, x.remote);
}

/// The owner's answer to a forwarded request.
struct http_answer {
  uint16_t status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_answer& x) {
  return f(caf::meta::type_name("http_answer"), x.status, x.headers, x.body);
}

/// Reads (take: reads and deletes, atomically on that node) one key of a
/// node-local column family.
struct key_read {
  uint8_t column = 0;
  std::string key;
  bool take = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, key_read& x) {
  return f(caf::meta::type_name("key_read"), x.column, x.key, x.take);
}

struct key_value {
  bool found = false;
  std::string value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, key_value& x) {
  return f(caf::meta::type_name("key_value"), x.found, x.value);
}

/// Reads many keys of one node-local column family at once (the
/// subscriptions of a notification POST: one round trip per node).
struct key_reads {
  uint8_t column = 0;
  std::vector<std::string> keys;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, key_reads& x) {
  return f(caf::meta::type_name("key_reads"), x.column, x.keys);
}

/// The answers to key_reads, in the order of its keys.
struct key_values {
  std::vector<key_value> values;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, key_values& x) {
  return f(caf::meta::type_name("key_values"), x.values);
}

/// One stored row of a shard being moved.
struct stored_row {
  uint8_t column = 0;
  std::string key;
  std::string value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stored_row& x) {
  return f(caf::meta::type_name("stored_row"), x.column, x.key, x.value);
}

/// A batch of a moving shard's rows, for the target to store.
struct shard_rows {
  uint32_t shard = 0;
  std::vector<stored_row> rows;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_rows& x) {
  return f(caf::meta::type_name("shard_rows"), x.shard, x.rows);
}

/// A shard's new owner since `epoch` (wall clock ms of the move; the newest
/// move of a shard wins); `tenants` are the organizations it brought.
struct shard_moved {
  uint32_t shard = 0;
  std::string node;
  int64_t epoch = 0;
  std::vector<uint64_t> tenants;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_moved& x) {
  return f(caf::meta::type_name("shard_moved"), x.shard, x.node, x.epoch,
           x.tenants);
}

/// Every move a node knows of (exchanged when nodes connect, so a node
/// that was away during a move learns it).
struct shard_moves {
  std::vector<shard_moved> items;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_moves& x) {
  return f(caf::meta::type_name("shard_moves"), x.items);
}

} // namespace crmsync
