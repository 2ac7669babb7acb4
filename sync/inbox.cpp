#include "sync/inbox.hpp"

#include "storage/keys.hpp"

namespace crmsync::sync {

namespace keys = storage::keys;
using storage::column;

inbox_kind lifecycle_kind(const std::string& event) {
  if (event == "subscriptionRemoved")
    return inbox_kind::removed;
  if (event == "reauthorizationRequired")
    return inbox_kind::reauthorize;
  return inbox_kind::missed;
}

void put_inbox(storage::write_batch& b, tenant_id org, user_id user,
               inbox_kind kind) {
  auto k = static_cast<char>(kind);
  b.put(column::inbox,
        keys::user_item(org, user, static_cast<unsigned char>(k)),
        std::string(1, k));
}

std::vector<inbox_row> take_inbox(const storage::db& db, tenant_id org,
                                  user_id user) {
  std::vector<inbox_row> rows;
  auto prefix = keys::of_user(org, user);
  db.scan(column::inbox, prefix, keys::prefix_end(prefix),
          [&](std::string_view k, std::string_view v) {
            rows.push_back(inbox_row{
                std::string{k}, v.empty() ? inbox_kind::change
                                          : static_cast<inbox_kind>(v[0])});
            return true;
          });
  return rows;
}

bool has_pending_rows(const storage::db& db, tenant_id org, user_id user) {
  auto prefix = keys::of_user(org, user);
  return db.count_prefix(column::sync_outbox, prefix, 1) > 0
         || db.count_prefix(column::inbox, prefix, 1) > 0;
}

} // namespace crmsync::sync
