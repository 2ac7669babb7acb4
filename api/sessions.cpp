#include "api/sessions.hpp"

#include <simdjson.h>

#include "common/crypto.hpp"
#include "protocol/json.hpp"
#include "storage/keys.hpp"

namespace crmsync::http::pages {

namespace {

/// crypto::random_token(32): 43 base64url characters.
constexpr size_t session_cookie_size = 43;

std::string_view str(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get_string().get(v))
    return {};
  return v;
}

} // namespace

std::string cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    auto end = header.find(';');
    auto pair = header.substr(0, end);
    auto b = pair.find_first_not_of(' ');
    if (b != std::string_view::npos) {
      pair = pair.substr(b);
      auto eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
        auto v = pair.substr(eq + 1);
        return std::string{v.substr(0, v.find_last_not_of(' ') + 1)};
      }
    }
    if (end == std::string_view::npos)
      break;
    header.remove_prefix(end + 1);
  }
  return {};
}

std::string public_path(const std::string& public_url) {
  auto scheme = public_url.find("://");
  auto path = scheme == std::string::npos ? std::string::npos
                                          : public_url.find('/', scheme + 3);
  return path == std::string::npos ? std::string{} : public_url.substr(path);
}

bool well_formed_secret(std::string_view v, size_t size) {
  return v.size() == size
         && v.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst"
                                "uvwxyz0123456789-_")
                == std::string_view::npos;
}

std::string encode(const session& s) {
  json::writer w;
  w.begin_object();
  w.key("tenant").value(s.who.tenant);
  w.key("oid").value(s.who.user);
  w.key("email").value(s.who.email);
  w.key("name").value(s.who.name);
  w.key("is_admin").value(s.who.is_admin);
  w.key("org").value(s.org.value);
  w.key("user").value(s.user.value);
  w.key("token_hash").value(s.token_hash);
  w.key("csrf").value(s.csrf);
  w.end_object();
  return storage::keys::page_session_value(s.expires_ms, s.org, s.user,
                                           w.take());
}

bool decode(std::string_view v, session& out) {
  auto head = storage::keys::parse_page_session(v);
  if (!head)
    return false;
  out.expires_ms = head->expires_ms;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(head->body.data(), head->body.size()).get(doc)
      || !doc.is_object())
    return false;
  uint64_t org = 0, user = 0;
  bool admin = false;
  if (doc["org"].get_uint64().get(org) || doc["user"].get_uint64().get(user)
      || doc["is_admin"].get_bool().get(admin))
    return false;
  out.who.tenant = std::string{str(doc, "tenant")};
  out.who.user = std::string{str(doc, "oid")};
  out.who.email = std::string{str(doc, "email")};
  out.who.name = std::string{str(doc, "name")};
  out.who.is_admin = admin;
  out.org = tenant_id{org};
  out.user = user_id{user};
  // The head is what replication and the purge go by: a body that says
  // otherwise is not this node's writing.
  if (head->org.valid() && (head->org != out.org || head->user != out.user))
    return false;
  out.token_hash = std::string{str(doc, "token_hash")};
  out.csrf = std::string{str(doc, "csrf")};
  return !out.who.tenant.empty() && !out.who.user.empty() && !out.csrf.empty();
}

std::string set_cookie(std::string_view name, const std::string& public_url,
                       const std::string& value, int64_t max_age) {
  auto out
      = std::string{name} + "=" + value + "; Path=" + public_path(public_url)
        + "/; Max-Age=" + std::to_string(max_age) + "; HttpOnly; SameSite=Lax";
  if (public_url.rfind("https://", 0) == 0)
    out += "; Secure";
  return out;
}

std::string session_cookie_name(const std::string& public_url) {
  if (public_url.rfind("https://", 0) == 0 && public_path(public_url).empty())
    return "__Host-" + std::string{session_cookie};
  return std::string{session_cookie};
}

std::string session_cookie_of(const request& req,
                              const std::string& public_url) {
  auto v = cookie_value(req.header("cookie"), session_cookie_name(public_url));
  return well_formed_secret(v, session_cookie_size) ? v : std::string{};
}

bool duplicate_session_cookie(const request& req,
                              const std::string& public_url) {
  auto name = session_cookie_name(public_url);
  int seen = 0;
  for (auto& [field, value] : req.headers) {
    if (field != "cookie")
      continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      auto end = rest.find(';');
      auto pair = rest.substr(0, end);
      auto b = pair.find_first_not_of(' ');
      if (b != std::string_view::npos) {
        pair = pair.substr(b);
        auto eq = pair.find('=');
        if (eq != std::string_view::npos && pair.substr(0, eq) == name)
          ++seen;
      }
      if (end == std::string_view::npos)
        break;
      rest.remove_prefix(end + 1);
    }
  }
  return seen > 1;
}

bool csrf_ok(const session& s, const query_params& form) {
  auto sent = find_param(form, "csrf");
  return sent != nullptr && !s.csrf.empty()
         && crypto::equal_secret(*sent, s.csrf);
}

} // namespace crmsync::http::pages
