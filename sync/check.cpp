#include "sync/check.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
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

/// One user's check: the CRM side read first, then the product's calendar
/// in Office 365 page by page, then compared.
struct user_job {
  user_check out;
  std::string o365_tenant;
  std::map<uint64_t, event_record> crm;
  std::set<uint64_t> all_events; ///< the user's events, window or not
  std::map<uint64_t, sync_link> links;
  std::map<std::string, graph_event> remote;
  std::vector<std::string> links_followed;
  std::function<void(user_check)> done;

  void finish() {
    auto d = std::move(done);
    done = nullptr;
    d(std::move(out));
  }
};

/// Reads the CRM side; false (with out.error) when the user is unreadable.
bool read_crm_side(storage::db& db, tenant_id org,
                   const calendar_status& status, int64_t from_ms,
                   int64_t to_ms, user_job& j, std::string& o365_user) {
  auto& out = j.out;
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
    return false;
  }
  o365_user = u.o365_user;
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
          j.all_events.insert(e.id.value);
          if (e.origin != event_origin::imported && e.end_ms >= from_ms
              && e.start_ms < to_ms)
            j.crm.emplace(e.id.value, e);
        }
        return true;
      });
  db.scan(column::links, prefix, keys::prefix_end(prefix),
          [&](std::string_view, std::string_view lv) {
            sync_link l;
            if (codec::decode(lv, l))
              j.links.emplace(l.event.value, l);
            return true;
          });
  out.crm_events = j.crm.size();
  return true;
}

/// Both sides read: every difference.
void compare(user_job& j) {
  auto& out = j.out;
  out.office365_events = j.remote.size();
  std::set<std::string> matched;
  for (auto& [id, e] : j.crm) {
    auto l = j.links.find(id);
    if (l == j.links.end()) {
      out.differences.push_back(
          {"not_synced", e.id.str(), "", "no Office 365 copy: " + summary(e)});
      continue;
    }
    auto g = j.remote.find(l->second.graph_id);
    if (g == j.remote.end()) {
      out.differences.push_back(
          {"office365_missing", e.id.str(), l->second.graph_id,
           "the linked Office 365 event is gone: " + summary(e)});
      continue;
    }
    matched.insert(g->first);
    auto& c = g->second.content;
    auto differs = compare_content(e, c);
    if (differs == content_difference::title_or_times)
      out.differences.push_back(
          {"content", e.id.str(), g->first,
           "CRM " + summary(e) + " vs Office 365 " + summary(c)});
    else if (differs == content_difference::outlook_fields)
      out.differences.push_back(
          {"content", e.id.str(), g->first,
           "sensitivity, show as, reminder or categories differ: "
               + summary(e)});
  }
  for (auto& [id, l] : j.links)
    if (j.all_events.count(id) == 0)
      out.differences.push_back({"link_broken", to_hex16(id), l.graph_id,
                                 "linked CRM event no longer exists"});
  for (auto& [gid, g] : j.remote)
    if (matched.count(gid) == 0)
      out.differences.push_back(
          {"crm_missing", "", gid,
           "no CRM event for Office 365's " + summary(g.content)});
}

/// The product's calendar as a calendar view (series expanded into
/// occurrences, as the sync sees them), one page per Graph answer.
void read_pages(graph::client& graph, std::shared_ptr<user_job> j,
                std::string url) {
  graph.start_page(j->o365_tenant, std::move(url),
                   [&graph, j](graph::result<graph::page> p) {
                     if (!p.ok) {
                       j->out.error = "reading the Office 365 calendar failed: "
                                      + p.failure.describe();
                       return j->finish();
                     }
                     for (auto& item : p.value.items) {
                       graph_event g;
                       if (from_graph(item, g) && g.type != "seriesMaster")
                         j->remote.emplace(g.id, g);
                     }
                     auto& next = p.value.next_link;
                     if (next.empty()) {
                       compare(*j);
                       return j->finish();
                     }
                     auto& seen = j->links_followed;
                     if (std::find(seen.begin(), seen.end(), next)
                         != seen.end()) {
                       j->out.error = "reading the Office 365 calendar failed: "
                                      "@odata.nextLink '"
                                      + next + "' came back again";
                       return j->finish();
                     }
                     seen.push_back(next);
                     read_pages(graph, j, next);
                   });
}

/// A whole organization's check: users started in order, at most
/// `parallel` reading Graph at once.
struct org_job : std::enable_shared_from_this<org_job> {
  storage::db* db = nullptr;
  graph::client* graph = nullptr;
  tenant_id org;
  std::string o365_tenant;
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  check_progress* progress = nullptr;
  std::vector<calendar_status> users;
  std::function<void(std::vector<user_check>)> done;

  std::mutex mtx;
  std::vector<user_check> results;
  size_t next = 0;
  size_t finished = 0;

  /// Starts the next user, if any is left (and past those whose CRM side
  /// cannot be read, without recursing).
  void start_one() {
    for (;;) {
      size_t i = 0;
      {
        std::lock_guard<std::mutex> guard{mtx};
        if (next == users.size())
          return;
        i = next++;
      }
      auto j = std::make_shared<user_job>();
      j->o365_tenant = o365_tenant;
      auto& status = users[i];
      std::string o365_user;
      if (!read_crm_side(*db, org, status, from_ms, to_ms, *j, o365_user)) {
        if (record(i, std::move(j->out)))
          return;
        continue;
      }
      auto self = shared_from_this();
      j->done = [self, i](user_check c) {
        if (!self->record(i, std::move(c)))
          self->start_one();
      };
      read_pages(*graph, j,
                 "/users/" + o365_user + "/calendars/"
                     + status.office365_calendar_id + "/calendarView?"
                     + "startDateTime=" + format_rfc3339(from_ms)
                     + "&endDateTime=" + format_rfc3339(to_ms));
      return;
    }
  }

  /// Stores a user's result; true when it was the last (`done` has run).
  bool record(size_t i, user_check c) {
    if (progress != nullptr) {
      progress->differences += c.differences.size() + (c.error.empty() ? 0 : 1);
      ++progress->users_done;
    }
    {
      std::lock_guard<std::mutex> guard{mtx};
      results[i] = std::move(c);
      if (++finished != users.size())
        return false;
    }
    auto d = std::move(done);
    done = nullptr;
    d(std::move(results));
    return true;
  }
};

} // namespace

void check_org(storage::db& db, graph::client& graph, tenant_id org,
               int64_t from_ms, int64_t to_ms,
               std::function<void(std::vector<user_check>)> done,
               size_t parallel, check_progress* progress) {
  std::string v;
  bool found = false;
  org_record o;
  if (db.get(column::orgs, keys::org(org), v, found) || !found
      || !codec::decode(v, o))
    return done({});
  auto job = std::make_shared<org_job>();
  auto prefix = keys::org(org);
  db.scan(column::sync, prefix, keys::prefix_end(prefix),
          [&](std::string_view k, std::string_view sv) {
            calendar_status s;
            if (k.size() == 17
                && k[16] == static_cast<char>(entity_kind::calendar)) {
              s.org = org;
              s.user = user_id{keys::get_be64(k, 8)};
              if (codec::decode(sv, s) && s.state == calendar_state::active)
                job->users.push_back(s);
            }
            return true;
          });
  if (progress != nullptr)
    progress->users_total = job->users.size();
  if (job->users.empty())
    return done({});
  job->db = &db;
  job->graph = &graph;
  job->org = org;
  job->o365_tenant = o.o365_tenant;
  job->from_ms = from_ms;
  job->to_ms = to_ms;
  job->progress = progress;
  job->results.resize(job->users.size());
  job->done = std::move(done);
  const size_t first
      = std::min(std::max<size_t>(1, parallel), job->users.size());
  for (size_t k = 0; k < first; ++k)
    job->start_one();
}

} // namespace crmsync::sync
