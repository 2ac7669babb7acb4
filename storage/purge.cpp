#include "storage/purge.hpp"

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

caf::error purge_expired(db& store, const purge_policy& policy, int64_t now_ms,
                         purge_counts& out) {
  deleter del{store, policy.batch_rows};
  // Sign-in states ('s') and sessions ('p'): useless once expired. A row
  // that does not decode is left for an operator to look at.
  auto err = store.scan(
      column::sessions, {}, {}, [&](std::string_view k, std::string_view v) {
        if (k.empty())
          return true;
        if (k[0] == 's') {
          signin_state_record rec;
          if (codec::decode(v, rec) && rec.expires_ms <= now_ms)
            del.row({{column::sessions, std::string{k}}}, out.signin_states);
        } else if (k[0] == 'p') {
          o365_session_record rec;
          if (codec::decode(v, rec) && rec.expires_ms <= now_ms)
            del.row({{column::sessions, std::string{k}}}, out.sessions);
        } else if (k[0] == 'w' && v.size() >= 8) {
          // A browser's page session (api/sessions.hpp): its expiry first.
          if (static_cast<int64_t>(keys::get_be64(v, 0)) <= now_ms)
            del.row({{column::sessions, std::string{k}}}, out.sessions);
        }
        return !del.error();
      });
  if (err || (err = del.flush()))
    return err;
  // Invitations: a resolved one counts from its resolution, a pending one
  // from its expiry; its token lookup goes with it.
  err = store.scan(
      column::invites, {}, {}, [&](std::string_view k, std::string_view v) {
        invite_record inv;
        if (!codec::decode(v, inv))
          return true;
        auto since = inv.status == invite_status::pending ? inv.expires_ms
                                                          : inv.resolved_ms;
        if (since + policy.invite_retention_ms <= now_ms)
          del.row({{column::invites, std::string{k}},
                   {column::lookup, keys::invite_token_lookup(inv.token_hash)}},
                  out.invites);
        return !del.error();
      });
  if (err || (err = del.flush()))
    return err;
  // E-mail the mailer gave up on; e-mail still being tried stays.
  err = store.scan(
      column::outbox, {}, {}, [&](std::string_view k, std::string_view v) {
        mail_item m;
        if (codec::decode(v, m) && m.failed
            && m.created_ms + policy.failed_mail_retention_ms <= now_ms)
          del.row({{column::outbox, std::string{k}}}, out.outbox);
        return !del.error();
      });
  if (err || (err = del.flush()))
    return err;
  return {};
}

} // namespace crmsync::storage
