// Reading a tenant's records of one column family: all of them (the audit
// log, invitations, join requests), listed for a user manager, or one by id.
//
// Private to actors/tenant/; runs inside the tenant actor.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "actors/tenant/state.hpp"

namespace crmsync::actors::tenant_impl {

/// Every record of one tenant-scoped family, decoded.
template <class Record>
caf::error scan_records(self_ptr self, column cf, std::vector<Record>& out) {
  auto& st = self->state;
  auto begin = keys::org(st.id);
  caf::error decode_err;
  auto err = st.env->db->scan(cf, begin, keys::prefix_end(begin),
                              [&](std::string_view, std::string_view v) {
                                Record r;
                                if (!codec::decode(v, r)) {
                                  decode_err = corrupt(column_name(cf));
                                  return false;
                                }
                                out.push_back(std::move(r));
                                return true;
                              });
  return err ? err : decode_err;
}

/// A tenant-scoped family listed for a user who manages users, oldest
/// first.
template <class Record>
caf::expected<std::vector<Record>>
managed_list(self_ptr self, const caller& who, column cf, const char* refusal) {
  auto w = check_caller(self, who);
  if (!w)
    return w.error();
  if (!can_manage_users(*w))
    return office365_error(crm_errc::forbidden, "manage_users_required",
                           refusal);
  std::vector<Record> items;
  if (auto err = scan_records(self, cf, items))
    return err;
  std::sort(items.begin(), items.end(), [](const Record& a, const Record& b) {
    return a.created_ms < b.created_ms;
  });
  return items;
}

template <class Record>
caf::expected<Record> load_item(self_ptr self, column cf, uint64_t id,
                                const char* what) {
  auto& st = self->state;
  std::string value;
  bool found = false;
  if (auto err
      = st.env->db->get(cf, keys::tenant_item(st.id, id), value, found))
    return err;
  if (!found)
    return not_found(what);
  Record r;
  if (!codec::decode(value, r))
    return corrupt(what);
  return r;
}

} // namespace crmsync::actors::tenant_impl
