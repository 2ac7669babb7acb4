// graph-emulator: calendarView and calendarView/delta, with the change log
// that delta rounds read.

#include "emulator/service_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "common/crypto.hpp"
#include "common/text.hpp"
#include "common/time_format.hpp"
#include "emulator/recurrence.hpp"
#include "emulator/time_zones.hpp"
#include "http/url.hpp"

namespace crmsync::emulator {

namespace {

/// A delta item for an event that is gone (or left the window).
std::string removed_json(const std::string& id) {
  json::writer w;
  w.begin_object();
  w.key("@odata.type").value("#microsoft.graph.event");
  w.key("id").value(id);
  w.key("@removed").begin_object().key("reason").value("deleted");
  w.end_object().end_object();
  return w.take();
}

} // namespace

/// Appends a write to the calendar's change log (call with mtx held).
/// The log and the deleted series only serve delta rounds that started
/// before a write; whenever the log has doubled since it was last
/// compacted, what every live delta token of the calendar has already
/// seen is dropped, so memory follows the oldest live token, not the
/// calendar's history.
void service::impl::record_change(const user& u, calendar& c,
                                  const std::string& event_id) {
  c.log.emplace_back(++c.seq, event_id);
  // Below the floor there is nothing worth compacting (and a compaction
  // walks every delta token of the directory).
  if (c.log.size() < std::max(c.compact_at, cfg.change_log_floor))
    return;
  auto seen = c.seq; // no live token: no round needs any of the log
  // This calendar's chains only: each has at most one live token and
  // one live round (the newest), and a chain with neither is over.
  auto chains = dir.calendar_chains.find({u.id, c.id});
  if (chains != dir.calendar_chains.end()) {
    for (auto ch = chains->second.begin(); ch != chains->second.end();) {
      bool live = false;
      auto tk = dir.chain_tokens.find(*ch);
      if (tk != dir.chain_tokens.end()) {
        auto t = dir.delta_tokens.find(tk->second);
        if (t != dir.delta_tokens.end()) {
          seen = std::min(seen, t->second.seq);
          live = true;
        }
      }
      auto rd = dir.chain_rounds.find(*ch);
      if (rd != dir.chain_rounds.end()) {
        auto page = dir.delta_pages.find(rd->second);
        if (page != dir.delta_pages.end()) {
          seen = std::min(seen, page->second.next.seq);
          live = true;
        }
      }
      if (live) {
        ++ch;
        continue;
      }
      dir.delta_chains.erase(*ch);
      dir.chain_tokens.erase(*ch);
      dir.chain_rounds.erase(*ch);
      ch = chains->second.erase(ch);
    }
    if (chains->second.empty())
      dir.calendar_chains.erase(chains);
  }
  c.log.erase(
      std::remove_if(c.log.begin(), c.log.end(),
                     [&](const auto& entry) { return entry.first <= seen; }),
      c.log.end());
  std::set<std::string> logged;
  for (auto& entry : c.log)
    logged.insert(entry.second);
  for (auto i = c.deleted_series.begin(); i != c.deleted_series.end();)
    i = logged.count(i->first) ? std::next(i) : c.deleted_series.erase(i);
  for (auto i = c.changed_series.begin(); i != c.changed_series.end();)
    i = logged.count(i->first) ? std::next(i) : c.changed_series.erase(i);
  c.compact_at = std::max(cfg.change_log_floor, 2 * c.log.size());
}

// -- routes

void service::impl::install_delta_routes() {
  auto self = this;

  // ---- Graph: calendarView and calendarView/delta
  // -------------------------------

  // The window of a calendarView request; answers 400 itself when absent.
  auto read_window = [self](const request& req, const http::query_params& q,
                            const responder_ptr& r, int64_t& start,
                            int64_t& end) {
    auto s = http::find_param(q, "startDateTime");
    auto e = http::find_param(q, "endDateTime");
    auto parse = [](const std::string& text) -> std::optional<int64_t> {
      // ISO 8601; without an offset the value is read as UTC.
      if (auto v = parse_rfc3339_ms(text))
        return v;
      return parse_rfc3339_ms(text + "Z");
    };
    std::optional<int64_t> ps, pe;
    if (s != nullptr)
      ps = parse(*s);
    if (e != nullptr)
      pe = parse(*e);
    if (!ps || !pe) {
      r->reply(graph_error(req, 400, "ErrorInvalidParameter",
                           "This request requires a time window specified by "
                           "the query string parameters StartDateTime and "
                           "EndDateTime.",
                           self->now()));
      return false;
    }
    start = *ps;
    end = *pe;
    return true;
  };

  auto overlaps = [](const event& e, int64_t start, int64_t end) {
    if (e.start_ms == e.end_ms)
      return e.start_ms >= start && e.start_ms < end;
    return e.start_ms < end && e.end_ms > start;
  };

  // A calendar's view, or with `master_id` the occurrences of one series
  // (GET …/events/{id}/instances, wherever the series is).
  auto calendar_view = [self, read_window, overlaps](
                           request& req, const std::string& user_key,
                           const std::string* cal_id,
                           const std::string* master_id, responder_ptr r) {
    http::query_params q;
    http::parse_query(req.query, q);
    int64_t start = 0, end = 0;
    auto zone = preferred_zone(req);
    if (!read_window(req, q, r, start, end))
      return;
    size_t top = default_event_page, skip = 0;
    if (auto v = http::find_param(q, "$top"))
      top = std::max<long>(1, std::min<long>(1000, std::atol(v->c_str())));
    if (auto v = http::find_param(q, "$skip"))
      skip = static_cast<size_t>(std::max<long>(0, std::atol(v->c_str())));
    std::lock_guard<std::mutex> guard{self->mtx};
    user* u = nullptr;
    auto mb = self->open_mailbox(req, r, user_key, u);
    if (mb == nullptr)
      return;
    std::vector<event> in;
    if (master_id != nullptr) {
      auto m = mb->events.find(*master_id);
      auto c = m == mb->events.end()
                   ? nullptr
                   : self->find_calendar(*mb, m->second.calendar_id);
      if (c == nullptr)
        return r->reply(self->item_not_found(req));
      if (m->second.recurrence.active) // a single event has none
        in = occurrences_of(*c, m->second, start, end);
    } else {
      auto c = self->open_calendar(req, r, *mb, cal_id);
      if (c == nullptr)
        return;
      in = instances_in(*mb, *c, start, end, overlaps);
    }
    std::sort(in.begin(), in.end(), [](const event& a, const event& b) {
      return a.start_ms < b.start_ms;
    });
    json::writer w;
    w.begin_object();
    size_t stop = std::min(in.size(), skip + top);
    if (stop < in.size()) {
      std::string next = base_url(req) + raw_path(req) + "?";
      for (auto& [k, v] : q)
        if (k != "$skip")
          next += http::percent_encode(k) + "=" + http::percent_encode(v) + "&";
      w.key("@odata.nextLink").value(next + "$skip=" + std::to_string(stop));
    }
    w.key("value").begin_array();
    for (size_t i = skip; i < stop; ++i)
      self->write_event(w, in[i], *u, {}, zone);
    w.end_array().end_object();
    auto res = json_response(200, w.take());
    applied_zone(res, zone);
    r->reply(std::move(res));
  };
  routes.add("GET", "/v1.0/users/{user}/calendars/{cal}/calendarView",
             [calendar_view](request& req, const http::path_params& pp,
                             responder_ptr r) {
               calendar_view(req, pp[0], &pp[1], nullptr, r);
             });
  routes.add("GET", "/v1.0/users/{user}/calendarView",
             [calendar_view](request& req, const http::path_params& pp,
                             responder_ptr r) {
               calendar_view(req, pp[0], nullptr, nullptr, r);
             });
  routes.add("GET", "/v1.0/users/{user}/events/{event}/instances",
             [calendar_view](request& req, const http::path_params& pp,
                             responder_ptr r) {
               calendar_view(req, pp[0], nullptr, &pp[1], r);
             });

  // Delta rounds: the first request (a window) or a deltaLink computes the
  // round's items, which are then paged with $skiptoken; the last page
  // carries the deltaLink of the next generation.
  auto calendar_delta = [self, read_window,
                         overlaps](request& req, const std::string& user_key,
                                   const std::string* cal_id, responder_ptr r) {
    http::query_params q;
    http::parse_query(req.query, q);
    size_t page_size = default_event_page;
    auto zone = preferred_zone(req);
    auto prefer = req.header("prefer");
    auto mp = prefer.find("odata.maxpagesize=");
    if (mp != std::string_view::npos)
      page_size = std::max<long>(
          1, std::atol(std::string{prefer.substr(mp + 18)}.c_str()));
    auto gone = [&] {
      r->reply(graph_error(req, 410, "SyncStateNotFound",
                           "The sync state generation is not found.",
                           self->now()));
    };
    std::unique_lock<std::mutex> guard{self->mtx};
    user* u = nullptr;
    auto mb = self->open_mailbox(req, r, user_key, u);
    if (mb == nullptr)
      return;
    auto c = self->open_calendar(req, r, *mb, cal_id);
    if (c == nullptr)
      return;
    // A page is named by its round and offset, so fetching the same
    // nextLink twice (a retried request) gives the same page.
    std::string page_key;
    size_t offset = 0;
    if (auto skiptoken = http::find_param(q, "$skiptoken")) {
      auto dot = skiptoken->rfind('.');
      if (dot == std::string::npos)
        return gone();
      page_key = skiptoken->substr(0, dot);
      auto digits = skiptoken->substr(dot + 1);
      if (self->dir.delta_pages.count(page_key) == 0 || digits.empty()
          || digits.size() > 9
          || digits.find_first_not_of("0123456789") != std::string::npos)
        return gone();
      offset = std::stoul(digits);
    } else {
      delta_token from;
      bool initial = true;
      if (auto dt = http::find_param(q, "$deltatoken")) {
        auto t = self->dir.delta_tokens.find(*dt);
        if (t == self->dir.delta_tokens.end() || t->second.user_id != u->id
            || t->second.calendar_id != c->id
            || self->dir.delta_chains[t->second.chain] != t->second.generation)
          return gone();
        from = t->second;
        initial = false;
      } else {
        guard.unlock();
        int64_t start = 0, end = 0;
        if (!read_window(req, q, r, start, end))
          return;
        guard.lock();
        from.user_id = u->id;
        from.calendar_id = c->id;
        from.start_ms = start;
        from.end_ms = end;
        from.chain = crypto::random_token(12);
        from.generation = 0;
        self->dir.delta_chains[from.chain] = 0;
        self->dir.calendar_chains[{u->id, c->id}].insert(from.chain);
      }
      delta_page page;
      std::set<std::string> changed;
      if (initial) {
        for (auto& id : c->event_ids)
          changed.insert(id);
      } else {
        for (auto& [seq, id] : c->log)
          if (seq > from.seq)
            changed.insert(id);
      }
      for (auto& id : changed) {
        auto e = mb->events.find(id);
        auto earlier = c->changed_series.find(id);
        if (!initial && e != mb->events.end()
            && earlier != c->changed_series.end()) {
          // A series whose recurrence changed: occurrences of its earlier
          // versions that it no longer has are gone (a shortened series).
          std::set<std::string> now;
          if (e->second.recurrence.active)
            for (auto& occ :
                 occurrences_of(*c, e->second, from.start_ms, from.end_ms))
              now.insert(occ.id);
          std::set<std::string> reported;
          for (auto& before : earlier->second)
            for (auto& occ : expand_series(before, from.start_ms, from.end_ms))
              if (!now.count(occ.id) && reported.insert(occ.id).second)
                page.items.push_back(removed_json(occ.id));
        }
        if (e != mb->events.end() && e->second.recurrence.active) {
          // A changed series: its occurrences in the window, in full.
          for (auto& occ :
               occurrences_of(*c, e->second, from.start_ms, from.end_ms)) {
            json::writer w;
            self->write_event(w, occ, *u, {}, zone);
            page.items.push_back(w.take());
          }
          continue;
        }
        auto gone = c->deleted_series.find(id);
        if (e == mb->events.end() && gone != c->deleted_series.end()
            && !initial) {
          // A deleted series: each of its occurrences in the window goes.
          for (auto& occ :
               expand_series(gone->second, from.start_ms, from.end_ms))
            page.items.push_back(removed_json(occ.id));
        }
        json::writer w;
        if (e != mb->events.end()
            && overlaps(e->second, from.start_ms, from.end_ms)) {
          self->write_event(w, e->second, *u, {}, zone);
        } else if (!initial) {
          // Deleted, or moved out of the window: Graph says "deleted".
          page.items.push_back(removed_json(id));
          continue;
        } else {
          continue;
        }
        page.items.push_back(w.take());
      }
      page.next = from;
      page.next.seq = c->seq;
      page.next.generation = from.generation + 1;
      page_key = crypto::random_token(24);
      // A chain keeps only its newest round.
      auto& round = self->dir.chain_rounds[from.chain];
      self->dir.delta_pages.erase(round);
      round = page_key;
      self->dir.delta_pages[page_key] = std::move(page);
    }
    auto& page = self->dir.delta_pages[page_key];
    auto base = base_url(req) + raw_path(req);
    json::writer w;
    w.begin_object();
    w.key("@odata.context")
        .value(base_url(req) + "/v1.0/$metadata#Collection(event)");
    offset = std::min(offset, page.items.size());
    size_t stop = std::min(page.items.size(), offset + page_size);
    std::vector<std::string> items(page.items.begin() + offset,
                                   page.items.begin() + stop);
    if (stop < page.items.size()) {
      w.key("@odata.nextLink")
          .value(base + "?$skiptoken=" + page_key + "." + std::to_string(stop));
    } else {
      if (page.link_token.empty()) {
        page.link_token = crypto::random_token(32);
        self->dir.delta_chains[page.next.chain] = page.next.generation;
        // The chain's previous token is superseded: drop it (its replay
        // then answers 410 like Graph's), which also bounds what is kept.
        auto& latest = self->dir.chain_tokens[page.next.chain];
        self->dir.delta_tokens.erase(latest);
        latest = page.link_token;
        self->dir.delta_tokens[page.link_token] = page.next;
      }
      w.key("@odata.deltaLink").value(base + "?$deltatoken=" + page.link_token);
    }
    w.key("value").begin_array();
    for (auto& item : items)
      w.raw(item);
    w.end_array().end_object();
    auto res = json_response(200, w.take());
    res.headers.emplace_back("Preference-Applied", "odata.track-changes");
    applied_zone(res, zone);
    r->reply(std::move(res));
  };
  routes.add("GET", "/v1.0/users/{user}/calendars/{cal}/calendarView/delta",
             [calendar_delta](request& req, const http::path_params& pp,
                              responder_ptr r) {
               calendar_delta(req, pp[0], &pp[1], r);
             });
  routes.add("GET", "/v1.0/users/{user}/calendarView/delta",
             [calendar_delta](request& req, const http::path_params& pp,
                              responder_ptr r) {
               calendar_delta(req, pp[0], nullptr, r);
             });

  // Forgets every delta token, as Exchange does when its cache evicts
  // them: the next use of a deltaLink answers 410 SyncStateNotFound.
  routes.add(
      "POST", "/_emulator/evict-delta-tokens",
      [self](request&, const http::path_params&, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        auto n = self->dir.delta_tokens.size();
        self->dir.delta_tokens.clear();
        self->dir.delta_pages.clear();
        r->reply(json_response(200, "{\"evicted\":" + std::to_string(n) + "}"));
      });
}

} // namespace crmsync::emulator
