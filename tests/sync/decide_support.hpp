// Records for the sync decision tests (tests/sync/*_test.cpp): events,
// links and Graph items with times relative to now.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "protocol/ids.hpp"
#include "protocol/records.hpp"
#include "protocol/sync.hpp"
#include "sync/graph_event.hpp"

namespace crmsync::test {

inline int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
      .count();
}

inline constexpr int64_t hour_ms = 3600 * 1000;
inline constexpr int64_t day_ms = 24 * hour_ms;

inline const user_id owner{0x51};
inline const tenant_id org{0x0a};

/// An event of `owner` from `start_ms` to `end_ms`.
inline event_record event(uint64_t id, std::string title, int64_t start_ms,
                          int64_t end_ms) {
  event_record e;
  e.id = event_id{id};
  e.org = org;
  e.owner = owner;
  e.title = std::move(title);
  e.start_ms = start_ms;
  e.end_ms = end_ms;
  e.version = 1;
  return e;
}

inline sync_link link(uint64_t event, std::string graph_id,
                      std::string change_key, uint64_t crm_version) {
  return sync_link{event_id{event}, std::move(graph_id), std::move(change_key),
                   crm_version};
}

inline sync::graph_event graph_item(std::string id, std::string change_key,
                                    std::string title, int64_t start_ms) {
  sync::graph_event g;
  g.id = std::move(id);
  g.change_key = std::move(change_key);
  g.type = "singleInstance";
  g.content.title = std::move(title);
  g.content.start_ms = start_ms;
  g.content.end_ms = start_ms + hour_ms;
  return g;
}

/// Graph's answer to a create that made `e` (its fields as crmsync sent
/// them), with the event's id and changeKey.
inline std::string created_answer(const event_record& e, const std::string& id,
                                  const std::string& change_key) {
  return R"({"id":")" + id + R"(","changeKey":")" + change_key + "\","
         + sync::to_graph(e, true).substr(1);
}

} // namespace crmsync::test
