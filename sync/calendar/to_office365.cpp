// An active user's round, the outbox pushed to Office 365, and conflicts.
#include "sync/calendar/run.hpp"

namespace crmsync::sync::calendar {

void calendar_run::active_round() {
  if (halted() || status_.state != calendar_state::active)
    return end();
  drain_outbox([this] {
    if (halted())
      return end();
    pull([this] {
      if (halted())
        return end();
      ensure_subscription([this] {
        if (!failed_ && !status_.alert.empty())
          close_alert();
        save_status();
        if (deletes_approved_ && !failed_)
          spend_approval();
        end();
      });
    });
  });
}

void calendar_run::drain_outbox(next_fn next) {
  outbox_.clear();
  auto prefix = keys::of_user(org_, user_);
  auto err = ctx_.db.scan(column::sync_outbox, prefix, keys::prefix_end(prefix),
                          [&](std::string_view k, std::string_view v) {
                            sync_change c;
                            if (codec::decode(v, c))
                              outbox_.emplace_back(std::string{k}, c);
                            return true;
                          });
  if (err) {
    fail("reading the sync outbox failed");
    return end();
  }
  size_t deletions = 0;
  size_t creates = 0;
  first_read_.reset();
  for (auto& [key, change] : outbox_) {
    sync_link l;
    event_record e;
    bool exists = false;
    bool linked = false;
    if (!load_event_and_link(change.event, !change.deleted, e, exists, l,
                             linked))
      continue;
    auto kind = plan_push(change, exists ? &e : nullptr, linked ? &l : nullptr,
                          paths())
                    .kind;
    if (kind == push_kind::remove)
      ++deletions;
    else if (kind == push_kind::create)
      ++creates;
    // The first entry is pushed right after this, in the same turn of
    // the actor: what was just read is still what the store holds.
    if (&key == &outbox_.front().first && !change.deleted)
      first_read_ = entry_read{change.event, std::move(e), exists, std::move(l),
                               linked};
  }
  if (!guard_deletes(deletions, "in Office 365", creates))
    return end();
  note_deletions(deletions);
  push_entries(std::move(next));
}

void calendar_run::push_entries(next_fn next) {
  step_loop::run(
      outbox_.size(),
      [this](size_t i, next_fn entry_done) {
        if (halted())
          return end();
        auto b = std::make_shared<storage::write_batch>();
        push_change(i, *b, [this, i, b, entry_done] {
          auto& [key, change] = outbox_[i];
          b->del(column::sync_outbox, key);
          // The counters with the change: the round's end then has no
          // status of its own to write.
          auto status = put_status(*b);
          if (ctx_.db.write(*b)) {
            fail("storing a sent change failed");
            return end();
          }
          stored_status_ = std::move(status);
          metrics::node().sync_lag(metrics::sync_direction::to_office365,
                                   (cfg_.now_ms() - change.at_ms) / 1000.0);
          entry_done();
        });
      },
      [this, next] {
        outbox_.clear();
        next();
      });
}

void calendar_run::push_change(size_t i, storage::write_batch& b,
                               next_fn next) {
  const sync_change& c = outbox_[i].second;
  auto e = std::make_shared<event_record>();
  auto link = std::make_shared<sync_link>();
  bool exists = false;
  bool linked = false;
  if (i == 0 && first_read_ && first_read_->event == c.event) {
    *e = std::move(first_read_->record);
    exists = first_read_->exists;
    *link = std::move(first_read_->link);
    linked = first_read_->linked;
    first_read_.reset();
  } else {
    if (!load_event_and_link(c.event, true, *e, exists, *link, linked)) {
      fail("reading a CRM event failed");
      return end();
    }
  }
  auto plan = plan_push(c, exists ? e.get() : nullptr,
                        linked ? link.get() : nullptr, paths());
  if (c.deleted || !exists)
    unskip(c.event);
  switch (plan.kind) {
    case push_kind::none:
      return next();
    case push_kind::remove:
      return delete_in_office365(plan.request, [this, link, &b, next] {
        del_link(b, *link);
        next();
      });
    case push_kind::update:
      return push_update(c, e, link, b, next);
    case push_kind::create:
      return push_create(c, plan.request, e, b, next, false);
  }
}

void calendar_run::push_update(const sync_change& c,
                               std::shared_ptr<event_record> e,
                               std::shared_ptr<sync_link> link,
                               storage::write_batch& b, next_fn next) {
  auto plan = plan_push(c, e.get(), link.get(), paths());
  send(plan.request,
       [this, c, e, link, &b, next](graph::result<graph::response>& r) {
         if (!r.ok
             && after_push(push_kind::update, failed_status(r.failure))
                    == push_next::conflict)
           return conflict(c, e, link, b, next);
         updated(c, e, link, b, r, next);
       });
}

void calendar_run::updated(const sync_change& c,
                           std::shared_ptr<event_record> e,
                           std::shared_ptr<sync_link> link,
                           storage::write_batch& b,
                           graph::result<graph::response>& r, next_fn next) {
  if (!r.ok
      && after_push(push_kind::update, failed_status(r.failure))
             == push_next::recreate) {
    // Deleted in Outlook: the CRM's later edit brings it back.
    del_link(b, *link);
    auto plan = plan_push(c, e.get(), nullptr, paths());
    return push_create(c, plan.request, e, b, next, true);
  }
  if (!r.ok && refused_for_good(r.failure)) {
    skip(*e, r.failure);
    return next();
  }
  if (!r.ok) {
    fail("updating an event in Office 365 failed", r.failure);
    return end();
  }
  std::string gid, ck;
  read_id_and_change_key(r.value.body, gid, ck);
  link->change_key = ck;
  link->crm_version = e->version;
  put_link(b, *link);
  unskip(e->id);
  ++status_.out_updated;
  next();
}

void calendar_run::push_create(const sync_change& c, const graph_request& req,
                               std::shared_ptr<event_record> e,
                               storage::write_batch& b, next_fn next,
                               bool recreate) {
  send(req,
       [this, c, e, &b, next, recreate](graph::result<graph::response>& r) {
         if (!r.ok) {
           if (after_push(push_kind::create, failed_status(r.failure))
               == push_next::calendar_gone)
             return calendar_gone();
           if (refused_for_good(r.failure)) {
             skip(*e, r.failure);
             return next();
           }
           fail("creating an event in Office 365 failed", r.failure);
           return end();
         }
         std::string gid, ck;
         if (!read_id_and_change_key(r.value.body, gid, ck)) {
           fail("Office 365 answered an event creation without an id");
           return end();
         }
         auto link = std::make_shared<sync_link>(
             sync_link{e->id, gid, ck, created_version(*e, r.value.body)});
         unskip(e->id);
         ++status_.out_created;
         if (link->crm_version < e->version) {
           // An older version, made by an attempt whose answer was lost (a
           // primary that died before it stored the link): the CRM's goes as
           // an update of it now.
           if (!recreate)
             return push_update(c, e, link, b, next);
           // Its update met 404 and this create found an older copy: an
           // update of that copy could meet 404 again, and so on round a
           // loop. Linked as answered instead.
           log::warn("sync " + org_.str() + "/" + user_.str()
                     + ": Office 365 answered the re-creation of event "
                     + e->id.str() + " with an older copy");
           link->crm_version = e->version;
         }
         put_link(b, *link);
         next();
       });
}

void calendar_run::conflict(const sync_change& c,
                            std::shared_ptr<event_record> e,
                            std::shared_ptr<sync_link> link,
                            storage::write_batch& b, next_fn next) {
  call(mailbox_call("GET", paths().event(link->graph_id)),
       [this, c, e, link, &b, next](graph::result<graph::response>& got) {
         graph_event theirs;
         if (!got.ok || !from_graph(got.value.body, theirs))
           return updated(c, e, link, b, got, next);
         auto r = resolve_conflict(policy_, user_, *e, *link, theirs, paths(),
                                   cfg_.now_ms());
         if (r.winner == side::office365)
           return keep_office365(r, link, theirs, b, next);
         record_conflict(b, r.record);
         send(r.patch, [this, c, e, link, &b,
                        next](graph::result<graph::response>& patched) {
           updated(c, e, link, b, patched, next);
         });
       });
}

void calendar_run::record_conflict(storage::write_batch& b,
                                   const sync_conflict& c) {
  std::string key = keys::audit(org_, c.at_ms, crypto::random_u64());
  b.put(column::conflicts, key, codec::encode(c));
}

void calendar_run::keep_office365(const conflict_resolution& r,
                                  std::shared_ptr<sync_link> link,
                                  const graph_event& theirs,
                                  storage::write_batch& b, next_fn next) {
  auto record = r.record;
  auto change_key = theirs.change_key;
  ask_tenant<event_record>(
      r.apply,
      [this, record, change_key, link, &b, next](event_record& applied) {
        record_conflict(b, record);
        link->change_key = change_key;
        link->crm_version = applied.version;
        put_link(b, *link);
        ++status_.in_updated;
        next();
      },
      [this](const api_error& err) {
        fail("applying Office 365's side of a conflict failed: " + err.message);
        end();
      });
}

} // namespace crmsync::sync::calendar
