// Disabling (R20), and the product's calendar deleted in Office 365 (R21).
#include "sync/calendar/run.hpp"

namespace crmsync::sync::calendar {

void calendar_run::disable(bool remote, next_fn next) {
  if (remote && !status_.subscription_id.empty())
    return call(
        tenant_call("DELETE", "/subscriptions/" + status_.subscription_id),
        [this, next](graph::result<graph::response>& r) {
          if (!r.ok && !is_not_found(r.failure)) {
            fail("deleting the Office 365 subscription failed", r.failure);
            return end();
          }
          forget_subscription();
          disable(true, next);
        });
  if (remote && !status_.office365_calendar_id.empty())
    return call(mailbox_call("DELETE", "/users/" + oid_ + "/calendars/"
                                           + status_.office365_calendar_id),
                [this, next](graph::result<graph::response>& r) {
                  if (!r.ok && !is_not_found(r.failure)) {
                    fail("deleting the CRM calendar in Office 365 failed",
                         r.failure);
                    return end();
                  }
                  status_.office365_calendar_id.clear();
                  disable(true, next);
                });
  forget_subscription();
  auto prefix = keys::of_user(org_, user_);
  storage::write_batch b;
  for (auto cf : {column::links, column::sync_outbox, column::inbox})
    ctx_.db.scan(cf, prefix, keys::prefix_end(prefix),
                 [&](std::string_view k, std::string_view v) {
                   sync_link l;
                   if (cf == column::links && codec::decode(v, l))
                     del_link(b, l);
                   else
                     b.del(cf, std::string{k});
                   return true;
                 });
  calendar_status fresh;
  fresh.org = org_;
  fresh.user = user_;
  fresh.state = calendar_state::disabled;
  fresh.out_created = status_.out_created;
  fresh.out_updated = status_.out_updated;
  fresh.out_deleted = status_.out_deleted;
  fresh.in_created = status_.in_created;
  fresh.in_updated = status_.in_updated;
  fresh.in_deleted = status_.in_deleted;
  if (!remote)
    fresh.last_error = "the CRM calendar was deleted in Office 365; sync "
                       "is off";
  status_ = fresh;
  put_status(b);
  storage::teardown_rows::del(b, org_, user_);
  if (ctx_.db.write(b))
    log::error("sync: cannot store a disabled sync");
  // The organization left this tenant (disconnected or deleted): the
  // node keeps no app token for it. Another calendar of the tenant still
  // tearing down fetches one again, and forgets it when it is done.
  if (torn_down_ && !o365_tenant_.empty())
    ctx_.graph.forget_tenant(o365_tenant_);
  next();
}

void calendar_run::calendar_gone() {
  log::info("sync " + org_.str() + "/" + user_.str()
            + ": the CRM calendar is gone from Office 365; disabling");
  // The request first: were the status written first and the request
  // not, a later run would see sync wanted and make a new calendar.
  set_calendar_sync cmd;
  cmd.who.service_admin = true;
  cmd.user = user_;
  cmd.enabled = false;
  cmd.reason = "the CRM calendar was deleted in Office 365";
  ask_tenant<calendar_status>(
      cmd, [this](calendar_status&) { disable(false, [this] { end(); }); },
      [this](const api_error& err) {
        fail("the CRM calendar is gone from Office 365, and recording that "
             "sync is off failed: "
             + err.message);
        end();
      });
}

} // namespace crmsync::sync::calendar
