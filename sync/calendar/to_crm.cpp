// Office 365 -> CRM: delta rounds read and applied.
#include "sync/calendar/run.hpp"

namespace crmsync::sync::calendar {

std::string calendar_run::initial_delta_url() const {
  auto now = cfg_.now_ms();
  auto from = now - std::chrono::milliseconds(cfg_.window_past).count();
  auto to = now + std::chrono::milliseconds(cfg_.window_future).count();
  return "/users/" + oid_ + "/calendars/" + status_.office365_calendar_id
         + "/calendarView/delta?startDateTime=" + format_rfc3339(from)
         + "&endDateTime=" + format_rfc3339(to);
}

void calendar_run::pull(next_fn next) {
  inbox_ = take_inbox(ctx_.db, org_, user_);
  bool due = !inbox_.empty() || notified_ || reconcile_due();
  for (auto& row : inbox_) {
    if (row.kind == inbox_kind::removed) {
      forget_subscription();      // recreated below
      status_.delta_link.clear(); // and everything read again
    }
    if (row.kind == inbox_kind::reauthorize)
      status_.subscription_expires_ms = 0; // renewed below
  }
  if (!due && !status_.delta_link.empty())
    return next();
  pull_next_ = std::move(next);
  restarted_ = false;
  full_ = status_.delta_link.empty();
  pages_.clear();
  read_page(status_.delta_link.empty() ? initial_delta_url()
                                       : status_.delta_link);
}

void calendar_run::read_page(std::string url) {
  if (halted())
    return end();
  if (pages_.size() >= max_delta_pages) {
    fail("too many delta pages");
    return end();
  }
  auto spec = mailbox_call("GET", std::move(url));
  // Large pages: fewer round trips (Graph may send fewer anyway).
  spec.headers = {
      {"Prefer", "odata.maxpagesize=500, outlook.body-content-type=\"text\""}};
  call(std::move(spec), [this](graph::result<graph::response>& r) {
    if (!r.ok) {
      if (r.failure.status == 410 && !restarted_) {
        // The delta token is gone: read the whole window again; links
        // keep it free of duplicates.
        restarted_ = true;
        full_ = true;
        status_.delta_link.clear();
        pages_.clear();
        return read_page(initial_delta_url());
      }
      if (is_not_found(r.failure))
        return calendar_gone();
      fail("reading changes from Office 365 failed", r.failure);
      return end();
    }
    delta_page page;
    if (!parse_delta_page(r.value.body, page)) {
      fail("Office 365 sent a delta page crmsync cannot read");
      return end();
    }
    pages_.push_back(std::move(page));
    if (!pages_.back().delta_link.empty())
      return pages_read();
    read_page(pages_.back().next_link);
  });
}

void calendar_run::pages_read() {
  size_t removals = 0;
  std::set<std::string> listed;
  for (auto& page : pages_)
    for (auto& item : page.items) {
      graph_event g;
      event_id e;
      if (!from_graph(item, g))
        continue;
      listed.insert(g.id);
      if (g.removed && event_of_graph_id(g.id, e))
        ++removals;
    }
  // A full round (first, or after 410) reports no removals: a linked
  // event of the window it no longer lists may have been deleted.
  unlisted_.clear();
  if (full_)
    unlisted_ = links_missing_from(listed);
  removals_ = removals + unlisted_.size();
  if (!guard_deletes(removals_, "in the CRM"))
    return end();
  apply_pages();
}

void calendar_run::apply_pages() {
  step_loop::run(
      pages_.size(),
      [this](size_t p, next_fn page_done) {
        page_batch_.emplace();
        step_loop::run(
            pages_[p].items.size(),
            [this, p](size_t i, next_fn item_done) {
              apply_item(pages_[p].items[i], *page_batch_,
                         std::move(item_done));
            },
            [this, p, page_done] {
              auto b = std::move(*page_batch_);
              page_batch_.reset();
              auto& page = pages_[p];
              if (!page.delta_link.empty()) {
                status_.delta_link = page.delta_link;
                status_.last_sync_ms = cfg_.now_ms();
                status_.last_error.clear();
                for (auto& row : inbox_)
                  b.del(column::inbox, row.key);
              }
              auto status = put_status(b);
              if (ctx_.db.write(b)) {
                fail("storing applied changes failed");
                return end();
              }
              stored_status_ = std::move(status);
              page_done();
            });
      },
      [this] { remove_unlisted(); });
}

void calendar_run::remove_unlisted() {
  if (unlisted_.empty())
    return pull_done();
  page_batch_.emplace();
  step_loop::run(
      unlisted_.size(),
      [this](size_t i, next_fn done) {
        remove_if_gone(unlisted_[i], *page_batch_, std::move(done));
      },
      [this] {
        auto b = std::move(*page_batch_);
        page_batch_.reset();
        put_status(b);
        if (ctx_.db.write(b)) {
          fail("storing applied deletions failed");
          return end();
        }
        pull_done();
      });
}

void calendar_run::pull_done() {
  note_deletions(removals_);
  pages_.clear();
  unlisted_.clear();
  auto next = std::move(pull_next_);
  next();
}

std::vector<sync_link>
calendar_run::links_missing_from(const std::set<std::string>& listed) {
  std::vector<sync_link> out;
  auto now = cfg_.now_ms();
  auto from = now - std::chrono::milliseconds(cfg_.window_past).count();
  auto to = now + std::chrono::milliseconds(cfg_.window_future).count();
  auto prefix = keys::of_user(org_, user_);
  ctx_.db.scan(column::links, prefix, keys::prefix_end(prefix),
               [&](std::string_view, std::string_view v) {
                 sync_link l;
                 event_record e;
                 bool exists = false;
                 if (codec::decode(v, l) && listed.count(l.graph_id) == 0
                     && load_event(l.event, e, exists) && exists
                     && e.end_ms >= from && e.start_ms < to)
                   out.push_back(l);
                 return true;
               });
  return out;
}

void calendar_run::remove_if_gone(const sync_link& link,
                                  storage::write_batch& b, next_fn next) {
  call(mailbox_call("GET", paths().event(link.graph_id)),
       [this, link, &b, next](graph::result<graph::response>& r) {
         auto act
             = after_confirm(r.ok ? r.value.status : failed_status(r.failure));
         if (act == removal_action::keep)
           return next();
         if (act != removal_action::delete_in_crm) {
           fail("confirming a deletion in Office 365 failed", r.failure);
           return end();
         }
         apply_office365 cmd;
         cmd.owner = user_;
         cmd.event = link.event;
         cmd.remove = true;
         auto removed = [this, link, &b, next] {
           del_link(b, link);
           ++status_.in_deleted;
           next();
         };
         ask_tenant<event_record>(
             cmd, [removed](event_record&) { removed(); },
             [this, removed](const api_error& err) {
               if (err.code == "not_found")
                 return removed(); // gone from the CRM already
               fail("deleting a CRM event failed: " + err.message);
               end();
             });
       });
}

void calendar_run::apply_item(const std::string& item, storage::write_batch& b,
                              next_fn next) {
  graph_event g;
  if (!from_graph(item, g))
    return next(); // not an event crmsync understands: leave it
  event_id linked_event;
  bool linked = event_of_graph_id(g.id, linked_event);
  sync_link link;
  if (linked && !find_link(linked_event, link))
    linked = false;
  auto decision = decide_item(g, linked ? &link : nullptr, user_);
  switch (decision.action) {
    case item_action::ignore:
    case item_action::own_echo:
      return next();
    case item_action::confirm_removal:
      return remove_if_gone(link, b, std::move(next));
    case item_action::upsert:
      break;
  }
  event_id ours;
  if (!linked && own_create_of(g, org_, ours)) {
    event_record e;
    bool exists = false;
    if (!load_event(ours, e, exists)) {
      fail("reading the CRM event of an Office 365 event failed");
      return end();
    }
    if (!exists)
      return remove_own_copy(g, ours, std::move(next));
    if (e.owner == user_)
      return next(); // its outbox row links it
    // Another user's event: imported like any other item.
  }
  ask_tenant<event_record>(
      decision.command,
      [this, g, linked, &b, next](event_record& applied) {
        put_link(b, link_after_upsert(g, applied));
        if (linked)
          ++status_.in_updated;
        else
          ++status_.in_created;
        next();
      },
      [this, linked, next](const api_error& err) {
        // Deleted or changed in the CRM meanwhile: the outbox carries
        // that change out, and its If-Match meets the conflict policy.
        if (linked && crm_moved_on(err.code))
          return next();
        fail("applying an Office 365 change failed: " + err.message);
        end();
      });
}

void calendar_run::remove_own_copy(const graph_event& g, event_id ours,
                                   next_fn next) {
  log::info("sync " + org_.str() + "/" + user_.str()
            + ": removing from Office 365 the copy of deleted CRM event "
            + ours.str() + " whose create was not linked");
  delete_in_office365(graph_request{"DELETE", paths().event(g.id), "", {}},
                      std::move(next));
}

void calendar_run::delete_in_office365(const graph_request& req, next_fn done) {
  send(req, [this, done](graph::result<graph::response>& r) {
    if (!r.ok
        && after_push(push_kind::remove, failed_status(r.failure))
               != push_next::done) {
      fail("deleting an event in Office 365 failed", r.failure);
      return end();
    }
    ++status_.out_deleted;
    done();
  });
}

} // namespace crmsync::sync::calendar
