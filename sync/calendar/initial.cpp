// Enabling (the product's calendar in the mailbox) and the initial sync.
#include "sync/calendar/run.hpp"

#include <simdjson.h>

namespace crmsync::sync::calendar {

void calendar_run::create_calendar(next_fn next) {
  if (status_.state != calendar_state::enabling)
    return make_calendar(std::move(next));
  adopt_calendar("/users/" + oid_ + "/calendars?$select=id,name",
                 std::move(next));
}

void calendar_run::adopt_calendar(std::string url, next_fn next) {
  governed<graph::page>(
      [this, url = std::move(url)](graph::callback<graph::page> done) {
        ctx_.graph.start_page(o365_tenant_, url, std::move(done));
      },
      [this, next](graph::result<graph::page>& r) {
        if (!r.ok)
          return make_calendar(next);
        simdjson::dom::parser parser;
        for (auto& item : r.value.items) {
          simdjson::dom::element v;
          std::string_view id, name;
          if (parser.parse(item).get(v) || v["id"].get_string().get(id)
              || v["name"].get_string().get(name) || name != "CRM")
            continue;
          status_.office365_calendar_id = std::string{id};
          status_.state = calendar_state::initial_sync;
          status_.last_error.clear();
          save_status();
          return next();
        }
        if (r.value.next_link.empty())
          return make_calendar(next);
        adopt_calendar(r.value.next_link, next);
      });
}

void calendar_run::make_calendar(next_fn next) {
  status_.state = calendar_state::enabling;
  save_status();
  call(mailbox_call("POST", "/users/" + oid_ + "/calendars",
                    R"({"name":"CRM"})"),
       [this, next](graph::result<graph::response>& r) {
         if (!r.ok) {
           fail("creating the CRM calendar in Office 365 failed", r.failure);
           return end();
         }
         std::string id, ck;
         if (!read_id_and_change_key(r.value.body, id, ck)) {
           fail("Office 365 answered the calendar creation without an id");
           return end();
         }
         status_.office365_calendar_id = id;
         status_.state = calendar_state::initial_sync;
         status_.last_error.clear();
         status_.done = 0;
         status_.total = 0;
         save_status();
         next();
       });
}

void calendar_run::initial_sync(next_fn next) {
  std::vector<event_record> candidates;
  auto prefix = keys::events_of_owner(org_, user_);
  bool bad = false;
  auto err = ctx_.db.scan(column::event_index, prefix, keys::prefix_end(prefix),
                          [&](std::string_view k, std::string_view) {
                            auto entry = keys::parse_event_index(k);
                            event_record e;
                            bool found = false;
                            if (!entry || !load_event(entry->event, e, found)) {
                              bad = true;
                              return false;
                            }
                            if (found)
                              candidates.push_back(std::move(e));
                            return true;
                          });
  if (err || bad) {
    fail("reading the user's CRM events failed");
    return end();
  }
  auto chosen = initial_selection(std::move(candidates), user_, cfg_.now_ms(),
                                  cfg_.max_initial_events);
  status_.total = chosen.size();
  round_ = std::make_unique<initial_round>();
  size_t done = 0;
  for (auto& e : chosen) {
    sync_link l;
    if (find_link(e.id, l))
      ++done;
    else
      round_->todo.push_back(e);
  }
  status_.done = done;
  save_status();
  round_->batches = initial_rounds(round_->todo, paths());
  round_->then = std::move(next);
  send_batches();
}

void calendar_run::send_batches() {
  auto& r = *round_;
  while (r.in_flight < std::max<size_t>(1, cfg_.parallel_batches) && !r.stop
         && !halted() && r.next < r.batches.size()) {
    size_t n = r.next++;
    std::vector<graph::batch_request> reqs;
    for (auto& q : r.batches[n])
      reqs.push_back(graph::batch_request{std::to_string(reqs.size() + 1),
                                          q.method, q.url, q.body});
    ++r.in_flight;
    using answers = std::vector<graph::batch_response>;
    // Outlook counts each request of the batch against the mailbox.
    auto weight = static_cast<uint32_t>(reqs.size());
    governed<answers>(
        [this, reqs = std::move(reqs)](graph::callback<answers> done) {
          ctx_.graph.start_batch(o365_tenant_, oid_, reqs, std::move(done));
        },
        [this, n](graph::result<answers>& a) { batch_answered(n, a); }, true,
        weight);
  }
  if (r.in_flight == 0)
    initial_done();
}

void calendar_run::batch_answered(
    size_t n, graph::result<std::vector<graph::batch_response>>& res) {
  auto& r = *round_;
  --r.in_flight;
  if (!res.ok) {
    if (is_not_found(res.failure))
      r.gone = true;
    else if (!r.failure)
      r.failure = res.failure;
    r.stop = true;
  } else if (!r.stop) {
    size_t first = std::min(n * batch_limit, r.todo.size());
    size_t last = std::min(first + batch_limit, r.todo.size());
    std::vector<event_record> sent(r.todo.begin() + first,
                                   r.todo.begin() + last);
    auto outcome = judge_initial_batch(sent, res.value);
    storage::write_batch b;
    for (auto& l : outcome.linked) {
      put_link(b, l);
      unskip(l.event);
      ++status_.done;
      ++status_.out_created;
    }
    for (auto& [e, err] : outcome.refused) {
      ++status_.done; // skipped and recorded; the next ones go on
      skip(e, err);
    }
    if (outcome.calendar_gone) {
      r.gone = true;
      r.stop = true;
    }
    if (outcome.failure) {
      if (!r.failure)
        r.failure = outcome.failure;
      r.stop = true;
    }
    put_status(b);
    if (ctx_.db.write(b)) {
      r.store_failed = true;
      r.stop = true;
    }
  }
  send_batches();
}

void calendar_run::initial_done() {
  auto r = std::move(round_);
  if (r->gone)
    return calendar_gone();
  if (halted())
    return end();
  if (r->store_failed) {
    fail("storing links failed");
    return end();
  }
  if (r->failure) {
    fail("sending the initial events failed", *r->failure);
    return end();
  }
  // The first delta round sets the baseline: everything in it is ours.
  status_.delta_link.clear();
  status_.state = calendar_state::active;
  status_.last_error.clear();
  save_status();
  r->then();
}

} // namespace crmsync::sync::calendar
