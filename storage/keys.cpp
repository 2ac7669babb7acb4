#include "storage/keys.hpp"

namespace crmsync::storage::keys {

void put_be64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out += static_cast<char>((v >> shift) & 0xff);
}

uint64_t get_be64(std::string_view in, size_t pos) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(in[pos + i]);
  return v;
}

std::string prefix_end(std::string_view prefix) {
  std::string out{prefix};
  while (!out.empty()) {
    auto c = static_cast<unsigned char>(out.back());
    if (c != 0xff) {
      out.back() = static_cast<char>(c + 1);
      return out;
    }
    out.pop_back();
  }
  return out;
}

std::string org(tenant_id t) {
  std::string k;
  put_be64(k, t.value);
  return k;
}

std::string user(tenant_id t, user_id u) {
  std::string k = org(t);
  put_be64(k, u.value);
  return k;
}

std::string users_of(tenant_id t) {
  return org(t);
}

std::string event(tenant_id t, event_id e) {
  std::string k = org(t);
  put_be64(k, e.value);
  return k;
}

std::string events_of_owner(tenant_id t, user_id owner) {
  std::string k = org(t);
  put_be64(k, owner.value);
  return k;
}

std::string events_of_owner_from(tenant_id t, user_id owner, int64_t start_ms) {
  std::string k = events_of_owner(t, owner);
  put_be64(k, order_signed(start_ms));
  return k;
}

std::string event_index(tenant_id t, user_id owner, int64_t start_ms,
                        event_id e) {
  std::string k = events_of_owner_from(t, owner, start_ms);
  put_be64(k, e.value);
  return k;
}

std::optional<event_index_entry> parse_event_index(std::string_view key) {
  if (key.size() != 32)
    return std::nullopt;
  event_index_entry x;
  x.tenant = tenant_id{get_be64(key, 0)};
  x.owner = user_id{get_be64(key, 8)};
  x.start_ms = unorder_signed(get_be64(key, 16));
  x.event = event_id{get_be64(key, 24)};
  return x;
}

std::string email_lookup(std::string_view normalized_email) {
  std::string k = "e";
  k += normalized_email;
  return k;
}

bool globally_unique(std::string_view lookup_key) {
  if (lookup_key.empty())
    return false;
  auto tag = lookup_key.front();
  return tag == 'e' || tag == 'u' || tag == 't' || tag == 'o';
}

std::string user_lookup(user_id u) {
  std::string k = "u";
  put_be64(k, u.value);
  return k;
}

std::string tenant_user_value(tenant_id t, user_id u) {
  return user(t, u);
}

std::string sync_state(tenant_id t, user_id u, entity_kind kind) {
  std::string k = user(t, u);
  k += static_cast<char>(kind);
  return k;
}

std::string tenant_item(tenant_id t, uint64_t id) {
  std::string k = org(t);
  put_be64(k, id);
  return k;
}

std::string audit(tenant_id t, int64_t at_ms, uint64_t seq) {
  std::string k = org(t);
  put_be64(k, order_signed(at_ms));
  put_be64(k, seq);
  return k;
}

namespace {

std::string tagged(char tag, std::string_view rest) {
  std::string k(1, tag);
  k += rest;
  return k;
}

} // namespace

std::string o365_tenant_lookup(std::string_view o365_tenant) {
  return tagged('t', o365_tenant);
}

std::string o365_user_lookup(std::string_view o365_tenant,
                             std::string_view o365_user) {
  auto k = tagged('o', o365_tenant);
  k += '/';
  k += o365_user;
  return k;
}

std::string invite_token_lookup(std::string_view token_hash) {
  return tagged('i', token_hash);
}

std::string join_lookup(tenant_id t, std::string_view o365_user) {
  auto k = tagged('j', org(t));
  k += o365_user;
  return k;
}

std::string signin_state(std::string_view state) {
  return tagged('s', state);
}

std::string o365_session(std::string_view token_hash) {
  return tagged('p', token_hash);
}

std::string page_session(std::string_view cookie_hash) {
  return tagged('w', cookie_hash);
}

namespace {

constexpr char page_session_mark = 0x01;
constexpr size_t page_session_head_size = 8 + 1 + 8 + 8;

} // namespace

std::string page_session_value(int64_t expires_ms, tenant_id org, user_id user,
                               std::string_view body) {
  std::string out;
  out.reserve(page_session_head_size + body.size());
  put_be64(out, static_cast<uint64_t>(expires_ms));
  out += page_session_mark;
  put_be64(out, org.value);
  put_be64(out, user.value);
  out += body;
  return out;
}

std::optional<page_session_head> parse_page_session(std::string_view value) {
  if (value.size() < 8)
    return std::nullopt;
  page_session_head h;
  h.expires_ms = static_cast<int64_t>(get_be64(value, 0));
  if (value.size() == 8 || value[8] != page_session_mark) {
    h.body = value.substr(8);
    return h;
  }
  if (value.size() < page_session_head_size)
    return std::nullopt;
  h.org = tenant_id{get_be64(value, 9)};
  h.user = user_id{get_be64(value, 17)};
  h.body = value.substr(page_session_head_size);
  return h;
}

std::string sync_request_key(tenant_id t, user_id u) {
  auto k = user(t, u);
  k += 'q';
  return k;
}

std::string sync_approval_key(tenant_id t, user_id u) {
  auto k = user(t, u);
  k += 'a';
  return k;
}

std::string link(tenant_id t, user_id u, event_id e) {
  auto k = user(t, u);
  put_be64(k, e.value);
  return k;
}

std::string user_item(tenant_id t, user_id u, uint64_t seq) {
  auto k = user(t, u);
  put_be64(k, seq);
  return k;
}

std::string of_user(tenant_id t, user_id u) {
  return user(t, u);
}

std::string graph_event_lookup(std::string_view graph_id) {
  return tagged('g', graph_id);
}

std::string subscription_lookup(std::string_view subscription_id) {
  return tagged('n', subscription_id);
}

std::string org_closed(tenant_id t) {
  auto k = org(t);
  k += 'c';
  return k;
}

} // namespace crmsync::storage::keys
