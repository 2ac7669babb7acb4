#include "storage/teardown_rows.hpp"

#include "storage/keys.hpp"

namespace crmsync::storage::teardown_rows {

namespace {

constexpr char version = 1;
constexpr char tag = 't';

} // namespace

std::string key(tenant_id t, user_id u) {
  auto k = keys::user(t, u);
  k += tag;
  return k;
}

bool is_teardown_key(std::string_view k) {
  return k.size() == 17 && k.back() == tag;
}

void put(write_batch& b, tenant_id t, user_id u, const std::string& o365_tenant,
         const std::string& o365_user) {
  std::string v(1, version);
  keys::put_be64(v, o365_tenant.size());
  v += o365_tenant;
  v += o365_user;
  b.put(column::sync, key(t, u), std::move(v));
}

void del(write_batch& b, tenant_id t, user_id u) {
  b.del(column::sync, key(t, u));
}

bool parse(std::string_view v, std::string& o365_tenant,
           std::string& o365_user) {
  if (v.size() < 9 || v[0] != version)
    return false;
  auto n = keys::get_be64(v, 1);
  if (n > v.size() - 9)
    return false;
  o365_tenant = std::string{v.substr(9, n)};
  o365_user = std::string{v.substr(9 + n)};
  return true;
}

caf::error find(const db& d, tenant_id t, user_id u, bool& found,
                std::string& o365_tenant, std::string& o365_user) {
  std::string v;
  found = false;
  if (auto err = d.get(column::sync, key(t, u), v, found))
    return err;
  found = found && parse(v, o365_tenant, o365_user);
  return caf::none;
}

} // namespace crmsync::storage::teardown_rows
