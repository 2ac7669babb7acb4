#include "storage/user_rows.hpp"

#include <string>

#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "storage/reminder_rows.hpp"
#include "storage/sync_links.hpp"

namespace crmsync::storage {

namespace {

/// Deletes every row of `cf` under `prefix`, calling `also(key, value)`
/// for the rows that point elsewhere (lookups to delete with them).
template <class Also>
caf::error del_prefix(const db& store, write_batch& b, column cf,
                      const std::string& prefix, uint64_t& count, Also also) {
  return store.scan(cf, prefix, keys::prefix_end(prefix),
                    [&](std::string_view k, std::string_view v) {
                      b.del(cf, std::string{k});
                      also(k, v);
                      ++count;
                      return true;
                    });
}

} // namespace

caf::error del_user_rows(const db& store, write_batch& b, const user_record& u,
                         user_rows_deleted& out) {
  auto none = [](std::string_view, std::string_view) {
  };
  // Events: the index names them (owner, start, id).
  auto err = del_prefix(store, b, column::event_index,
                        keys::events_of_owner(u.org, u.id), out.events,
                        [&](std::string_view k, std::string_view) {
                          if (auto e = keys::parse_event_index(k))
                            b.del(column::events, keys::event(u.org, e->event));
                        });
  if (err)
    return err;
  auto mine = keys::of_user(u.org, u.id);
  // Mailbox and calendar states, the sync request and approvals; a
  // calendar's subscription has a global lookup.
  err = del_prefix(
      store, b, column::sync, mine, out.sync_rows,
      [&](std::string_view k, std::string_view v) {
        calendar_status cs;
        if (k == keys::sync_state(u.org, u.id, entity_kind::calendar)
            && codec::decode(v, cs) && !cs.subscription_id.empty())
          b.del(column::lookup, keys::subscription_lookup(cs.subscription_id));
      });
  if (err)
    return err;
  // Links go with their Graph event lookups.
  err = del_prefix(store, b, column::links, mine, out.sync_rows,
                   [&](std::string_view, std::string_view v) {
                     sync_link l;
                     if (codec::decode(v, l))
                       del_sync_link(b, u.org, u.id, l);
                   });
  if (err)
    return err;
  for (auto cf : {column::sync_outbox, column::inbox})
    if ((err = del_prefix(store, b, cf, mine, out.sync_rows, none)))
      return err;
  // The user's durable timers on this node (reminder rows are node-local,
  // keyed by target, not by tenant): a periodic one would otherwise wake
  // the deleted user's calendar for ever.
  for (auto target : {entity_kind::calendar, entity_kind::mailbox})
    for (auto kind :
         {reminder_kind::reconcile, reminder_kind::renew_subscription}) {
      entity_key key{target, u.org, u.id};
      std::optional<int64_t> due;
      if ((err = reminder_rows::find(store, key, kind, due)))
        return err;
      if (due) {
        reminder_rows::remove(b, key, kind, *due);
        ++out.reminders;
      }
    }
  b.del(column::users, keys::user(u.org, u.id));
  b.del(column::lookup, keys::email_lookup(u.email));
  b.del(column::lookup, keys::user_lookup(u.id));
  if (!u.o365_user.empty())
    b.del(column::lookup, keys::o365_user_lookup(u.o365_tenant, u.o365_user));
  return {};
}

} // namespace crmsync::storage
