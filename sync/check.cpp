#include "sync/check.hpp"

#include <map>
#include <set>

#include "common/time_format.hpp"
#include "graph/client.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "sync/graph_event.hpp"

namespace crmsync::sync {

namespace {

namespace keys = storage::keys;
namespace codec = storage::codec;
using storage::column;

uint64_t count_rows(storage::db& db, column cf, const std::string& prefix) {
  uint64_t n = 0;
  db.scan(cf, prefix, keys::prefix_end(prefix),
          [&n](std::string_view, std::string_view) {
            ++n;
            return true;
          });
  return n;
}

user_check check_user(storage::db& db, graph::client& graph, tenant_id org,
                      const std::string& o365_tenant,
                      const calendar_status& status, int64_t from_ms,
                      int64_t to_ms) {
  user_check out;
  out.user = status.user;
  out.state = to_string(status.state);
  auto prefix = keys::of_user(org, status.user);
  out.pending = count_rows(db, column::sync_outbox, prefix)
                + count_rows(db, column::inbox, prefix);
  std::string v;
  bool found = false;
  user_record u;
  if (db.get(column::users, keys::user(org, status.user), v, found) || !found
      || !codec::decode(v, u)) {
    out.error = "the user could not be read";
    return out;
  }
  // The CRM side: the user's eligible events and their links.
  std::map<uint64_t, event_record> crm;
  std::set<uint64_t> all_events; // window or not
  auto owner = keys::events_of_owner(org, status.user);
  db.scan(
      column::event_index, owner, keys::prefix_end(owner),
      [&](std::string_view k, std::string_view) {
        auto entry = keys::parse_event_index(k);
        event_record e;
        std::string ev;
        bool f = false;
        if (entry
            && !db.get(column::events, keys::event(org, entry->event), ev, f)
            && f && codec::decode(ev, e)) {
          all_events.insert(e.id.value);
          if (e.origin != event_origin::imported && e.end_ms >= from_ms
              && e.start_ms < to_ms)
            crm.emplace(e.id.value, e);
        }
        return true;
      });
  std::map<uint64_t, sync_link> links;
  db.scan(column::links, prefix, keys::prefix_end(prefix),
          [&](std::string_view, std::string_view lv) {
            sync_link l;
            if (codec::decode(lv, l))
              links.emplace(l.event.value, l);
            return true;
          });
  out.crm_events = crm.size();
  // The Office 365 side: the product's calendar as a calendar view (series
  // expanded into occurrences, as the sync sees them) over a window wider
  // than the sync's.
  std::vector<std::string> items;
  graph::error err;
  if (!graph.list_all(
          o365_tenant,
          "/users/" + u.o365_user + "/calendars/" + status.office365_calendar_id
              + "/calendarView?startDateTime=" + format_rfc3339(from_ms)
              + "&endDateTime=" + format_rfc3339(to_ms),
          items, err)) {
    out.error = "reading the Office 365 calendar failed: " + err.describe();
    return out;
  }
  std::map<std::string, graph_event> remote;
  for (auto& item : items) {
    graph_event g;
    if (from_graph(item, g) && g.type != "seriesMaster")
      remote.emplace(g.id, g);
  }
  out.office365_events = remote.size();
  std::set<std::string> matched;
  for (auto& [id, e] : crm) {
    auto l = links.find(id);
    if (l == links.end()) {
      out.differences.push_back(
          {"not_synced", e.id.str(), "", "no Office 365 copy: " + summary(e)});
      continue;
    }
    auto g = remote.find(l->second.graph_id);
    if (g == remote.end()) {
      out.differences.push_back(
          {"office365_missing", e.id.str(), l->second.graph_id,
           "the linked Office 365 event is gone: " + summary(e)});
      continue;
    }
    matched.insert(g->first);
    auto& c = g->second.content;
    if (c.title != e.title || c.start_ms != e.start_ms || c.end_ms != e.end_ms)
      out.differences.push_back(
          {"content", e.id.str(), g->first,
           "CRM " + summary(e) + " vs Office 365 " + summary(c)});
  }
  for (auto& [id, l] : links)
    if (all_events.count(id) == 0)
      out.differences.push_back({"link_broken", to_hex16(id), l.graph_id,
                                 "linked CRM event no longer exists"});
  for (auto& [gid, g] : remote)
    if (matched.count(gid) == 0)
      out.differences.push_back(
          {"crm_missing", "", gid,
           "no CRM event for Office 365's " + summary(g.content)});
  return out;
}

} // namespace

std::vector<user_check> check_org(storage::db& db, graph::client& graph,
                                  tenant_id org, int64_t from_ms,
                                  int64_t to_ms) {
  std::vector<user_check> out;
  std::string v;
  bool found = false;
  org_record o;
  if (db.get(column::orgs, keys::org(org), v, found) || !found
      || !codec::decode(v, o))
    return out;
  auto prefix = keys::org(org);
  std::vector<calendar_status> active;
  db.scan(column::sync, prefix, keys::prefix_end(prefix),
          [&](std::string_view k, std::string_view sv) {
            calendar_status s;
            if (k.size() == 17
                && k[16] == static_cast<char>(entity_kind::calendar)) {
              s.org = org;
              s.user = user_id{keys::get_be64(k, 8)};
              if (codec::decode(sv, s) && s.state == calendar_state::active)
                active.push_back(s);
            }
            return true;
          });
  for (auto& s : active)
    out.push_back(check_user(db, graph, org, o.o365_tenant, s, from_ms, to_ms));
  return out;
}

} // namespace crmsync::sync
