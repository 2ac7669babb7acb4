#include "storage/purge.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace crmsync::storage {

namespace {

/// Deletes collected rows in batches of `per_batch`, counting each batch
/// once it is written.
class deleter {
public:
  deleter(db& store, size_t per_batch)
      : store_(store), per_batch_(per_batch < 1 ? 1 : per_batch) {}

  /// Queues the deletion of one row made of `keys` (deleted together);
  /// `counter` grows by one when they are written.
  void row(std::vector<std::pair<column, std::string>> keys,
           uint64_t& counter) {
    for (auto& [cf, key] : keys)
      batch_.del(cf, std::move(key));
    pending_.push_back(&counter);
    if (pending_.size() >= per_batch_)
      flush();
  }

  caf::error flush() {
    if (error_ || batch_.empty())
      return error_;
    if ((error_ = store_.write(batch_)))
      return error_;
    for (auto* c : pending_)
      ++*c;
    batch_ = write_batch{};
    pending_.clear();
    return {};
  }

  const caf::error& error() const {
    return error_;
  }

private:
  db& store_;
  size_t per_batch_;
  write_batch batch_;
  std::vector<uint64_t*> pending_;
  caf::error error_;
};

} // namespace

namespace {

/// What one family's rows say: whether the row at `k` is expired, and the
/// rows to delete with it (its key first).
using judge = std::function<void(std::string_view k, std::string_view v,
                                 deleter& del, purge_counts& out)>;

/// Reads up to `max_rows` rows of `cf` from `at.next` on; `at.next` moves
/// past them, or to the next stage when the family is read to its end.
caf::error step_family(db& store, column cf, const judge& decide, deleter& del,
                       purge_counts& out, purge_cursor& at, size_t max_rows) {
  size_t seen = 0;
  bool more = false;
  std::string last;
  auto err = store.scan(cf, at.next, {},
                        [&](std::string_view k, std::string_view v) {
                          if (seen == max_rows) {
                            more = true;
                            return false;
                          }
                          ++seen;
                          last.assign(k.data(), k.size());
                          decide(k, v, del, out);
                          return !del.error();
                        });
  if (err || (err = del.flush()))
    return err;
  if (more) {
    // The smallest key after `last`.
    at.next = std::move(last);
    at.next.push_back('\0');
  } else {
    ++at.stage;
    at.next.clear();
  }
  return {};
}

} // namespace

caf::error purge_step(db& store, const purge_policy& policy, int64_t now_ms,
                      purge_counts& out, purge_cursor& at, size_t max_rows) {
  deleter del{store, policy.batch_rows};
  max_rows = std::max<size_t>(1, max_rows);
  switch (at.stage) {
    case 0:
      // Sign-in states ('s') and sessions ('p'): useless once expired. A
      // row that does not decode is left for an operator to look at.
      return step_family(
          store, column::sessions,
          [now_ms](std::string_view k, std::string_view v, deleter& d,
                   purge_counts& n) {
            if (k.empty())
              return;
            if (k[0] == 's') {
              signin_state_record rec;
              if (codec::decode(v, rec) && rec.expires_ms <= now_ms)
                d.row({{column::sessions, std::string{k}}}, n.signin_states);
            } else if (k[0] == 'p') {
              o365_session_record rec;
              if (codec::decode(v, rec) && rec.expires_ms <= now_ms)
                d.row({{column::sessions, std::string{k}}}, n.sessions);
            } else if (k[0] == 'w' && v.size() >= 8) {
              // A browser's page session (api/sessions.hpp): its expiry
              // first.
              if (static_cast<int64_t>(keys::get_be64(v, 0)) <= now_ms)
                d.row({{column::sessions, std::string{k}}}, n.sessions);
            }
          },
          del, out, at, max_rows);
    case 1:
      // Invitations: a resolved one counts from its resolution, a pending
      // one from its expiry; its token lookup goes with it.
      return step_family(
          store, column::invites,
          [now_ms, &policy](std::string_view k, std::string_view v, deleter& d,
                            purge_counts& n) {
            invite_record inv;
            if (!codec::decode(v, inv))
              return;
            auto since = inv.status == invite_status::pending ? inv.expires_ms
                                                              : inv.resolved_ms;
            if (since + policy.invite_retention_ms <= now_ms)
              d.row(
                  {{column::invites, std::string{k}},
                   {column::lookup, keys::invite_token_lookup(inv.token_hash)}},
                  n.invites);
          },
          del, out, at, max_rows);
    case 2:
      // E-mail the mailer gave up on; e-mail still being tried stays.
      return step_family(
          store, column::outbox,
          [now_ms, &policy](std::string_view k, std::string_view v, deleter& d,
                            purge_counts& n) {
            mail_item m;
            if (codec::decode(v, m) && m.failed
                && m.created_ms + policy.failed_mail_retention_ms <= now_ms)
              d.row({{column::outbox, std::string{k}}}, n.outbox);
          },
          del, out, at, max_rows);
    default:
      return {};
  }
}

caf::error purge_expired(db& store, const purge_policy& policy, int64_t now_ms,
                         purge_counts& out) {
  purge_cursor at;
  while (!at.done())
    if (auto err = purge_step(store, policy, now_ms, out, at,
                              std::numeric_limits<size_t>::max()))
      return err;
  return {};
}

} // namespace crmsync::storage
