// A Graph request that a sync decision asks for (sync/initial.hpp,
// sync/outbox.hpp, sync/conflict.hpp), and the Graph paths of one user's
// product calendar.
//
// Plain values: a decision returns them, its caller sends them through
// graph::client (alone or in a $batch). No I/O here; thread-safe.
#pragma once

#include <string>

#include "http/client.hpp"

namespace crmsync::sync {

struct graph_request {
  std::string method;
  std::string url; ///< relative to the Graph version, e.g. "/users/{id}/events"
  std::string body;          ///< JSON or ""
  http::header_list headers; ///< e.g. If-Match
};

/// Where one user's product calendar lives in Graph.
struct calendar_paths {
  std::string user;     ///< the mailbox owner's object id
  std::string calendar; ///< the product calendar's id

  /// The calendar's events (creates go here).
  std::string events() const {
    return "/users/" + user + "/calendars/" + calendar + "/events";
  }

  /// One event of the mailbox (reads, updates, deletes).
  std::string event(const std::string& graph_id) const {
    return "/users/" + user + "/events/" + graph_id;
  }
};

/// Graph's weak ETag form of a changeKey, as If-Match expects it.
inline std::string if_match(const std::string& change_key) {
  return "W/\"" + change_key + "\"";
}

} // namespace crmsync::sync
