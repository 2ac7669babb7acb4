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
  std::string via; // the node that received it
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_forward& x) {
  return f(caf::meta::type_name("http_forward"), x.method, x.target, x.headers,
           x.body, x.via);
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

} // namespace crmsync
