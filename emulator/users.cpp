// graph-emulator: Graph users (/v1.0/users) and the directory's users.

#include "emulator/service_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "common/crypto.hpp"
#include "common/text.hpp"
#include "common/time_format.hpp"
#include "emulator/recurrence.hpp"
#include "emulator/time_zones.hpp"
#include "http/url.hpp"

namespace crmsync::emulator {

namespace {

/// Reads `$select` on users (names checked against what the emulator
/// knows); answers 400 itself and returns false on an unknown property.
bool read_user_select(const request& req, const http::query_params& q,
                      const responder_ptr& r, std::vector<std::string>& out,
                      int64_t now) {
  static const std::set<std::string> known{"id",
                                           "displayName",
                                           "mail",
                                           "userPrincipalName",
                                           "accountEnabled",
                                           "businessPhones",
                                           "givenName",
                                           "jobTitle",
                                           "mobilePhone",
                                           "officeLocation",
                                           "preferredLanguage",
                                           "surname"};
  auto v = http::find_param(q, "$select");
  if (v == nullptr)
    return true;
  std::string_view s{*v};
  while (!s.empty()) {
    auto c = s.find(',');
    auto name = std::string{s.substr(0, c)};
    s = c == std::string_view::npos ? std::string_view{} : s.substr(c + 1);
    if (known.count(name) == 0) {
      r->reply(
          graph_error(req, 400, "Request_BadRequest",
                      "Could not find a property named '" + name
                          + "' on type 'Microsoft.DirectoryServices.User'.",
                      now));
      return false;
    }
    out.push_back(name);
  }
  return true;
}

} // namespace

/// The "users" of a seeding request, checked (call with mtx held): each
/// needs a userPrincipalName with '@'; ids and UPNs (case-insensitively)
/// are unique in the whole directory, the request's users included.
/// Fills `refused` (400 or 409) and returns false otherwise.
bool service::impl::read_new_users(const request& req, object& o,
                                   const std::string& tenant_id,
                                   std::vector<user>& out, response& refused) {
  std::set<std::string> new_ids, new_upns; // this request's users
  simdjson::dom::array arr;
  if (o["users"].get_array().get(arr))
    return true;
  std::string_view sv;
  for (element ue : arr) {
    user u;
    u.tenant_id = tenant_id;
    u.id = ue["id"].get_string().get(sv) ? new_guid() : std::string{sv};
    if (ue["userPrincipalName"].get_string().get(sv)
        || sv.find('@') == std::string_view::npos) {
      refused = graph_error(req, 400, "BadRequest",
                            "each user needs a userPrincipalName", now());
      return false;
    }
    u.user_principal_name = std::string{sv};
    u.display_name = ue["displayName"].get_string().get(sv)
                         ? u.user_principal_name
                         : std::string{sv};
    if (!ue["mail"].get_string().get(sv))
      u.mail = std::string{sv};
    bool b;
    if (!ue["isAdmin"].get_bool().get(b))
      u.is_admin = b;
    if (!ue["hasMailbox"].get_bool().get(b))
      u.has_mailbox = b;
    auto upn = ascii_lower(u.user_principal_name);
    bool taken = dir.users.count(u.id) != 0 || dir.user_by_upn.count(upn) != 0
                 || !new_ids.insert(u.id).second
                 || !new_upns.insert(upn).second;
    if (taken) {
      refused = graph_error(req, 409, "Conflict",
                            "a user with this id or userPrincipalName "
                            "already exists",
                            now());
      return false;
    }
    out.push_back(u);
  }
  return true;
}

/// Adds checked users to their tenant, the directory and its UPN index,
/// and writes them as "users":[...] (call with mtx held).
void service::impl::add_users(json::writer& w, tenant& t,
                              const std::vector<user>& users) {
  w.key("users").begin_array();
  for (auto& u : users) {
    t.user_ids.push_back(u.id);
    w.begin_object().key("id").value(u.id);
    w.key("userPrincipalName").value(u.user_principal_name);
    w.key("isAdmin").value(u.is_admin);
    w.key("hasMailbox").value(u.has_mailbox);
    w.end_object();
    dir.user_by_upn[ascii_lower(u.user_principal_name)] = u.id;
    dir.users[u.id] = u;
  }
  w.end_array();
}

/// Removes a user with what is theirs (call with mtx held): the UPN
/// index entry, their place in the tenant's list, their mailbox, their
/// subscriptions (subscriptionRemoved) and their calendars' delta chains.
/// Sign-in codes issued to them are refused when redeemed.
void service::impl::delete_user(const user& gone) {
  auto id = gone.id; // `gone` is erased below
  auto mine = dir.subscriptions_by_user.find(id);
  if (mine != dir.subscriptions_by_user.end()) {
    std::vector<std::string> ids(mine->second.begin(), mine->second.end());
    for (auto& sid : ids) {
      auto i = dir.subscriptions.find(sid);
      if (i != dir.subscriptions.end())
        remove_subscription(i);
    }
  }
  for (auto c = dir.calendar_chains.lower_bound({id, std::string{}});
       c != dir.calendar_chains.end() && c->first.first == id;) {
    for (auto& ch : c->second) {
      auto tk = dir.chain_tokens.find(ch);
      if (tk != dir.chain_tokens.end())
        dir.delta_tokens.erase(tk->second);
      auto rd = dir.chain_rounds.find(ch);
      if (rd != dir.chain_rounds.end())
        dir.delta_pages.erase(rd->second);
      dir.chain_tokens.erase(ch);
      dir.chain_rounds.erase(ch);
      dir.delta_chains.erase(ch);
    }
    c = dir.calendar_chains.erase(c);
  }
  dir.mailboxes.erase(id);
  auto t = dir.tenants.find(gone.tenant_id);
  if (t != dir.tenants.end()) {
    auto& ids = t->second.user_ids;
    ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
  }
  dir.user_by_upn.erase(ascii_lower(gone.user_principal_name));
  dir.users.erase(id);
}

/// A user by id or userPrincipalName, in any tenant.
user* service::impl::find_any_user(std::string_view key) {
  auto i = dir.users.find(std::string{key});
  if (i != dir.users.end())
    return &i->second;
  return find_user_by_upn(key);
}

/// A user of the token's tenant by id or userPrincipalName; answers and
/// returns nullptr when there is none: 404 for an unknown user, 401 when
/// the user belongs to another tenant (the token is not valid there).
user* service::impl::resolve_user(const request& req, const responder_ptr& r,
                                  const access_token& tok,
                                  std::string_view key) {
  auto u = find_any_user(key);
  if (u == nullptr) {
    r->reply(user_not_found(req, key));
    return nullptr;
  }
  if (u->tenant_id != tok.tenant_id) {
    r->reply(graph_error(req, 401, "InvalidAuthenticationToken",
                         "Access token validation failure: the token was "
                         "issued for another tenant.",
                         now()));
    return nullptr;
  }
  return u;
}

response service::impl::user_not_found(const request& req,
                                       std::string_view key) {
  return graph_error(req, 404, "Request_ResourceNotFound",
                     "Resource '" + std::string{key}
                         + "' does not exist or one of its queried "
                           "reference-property objects are not present.",
                     now());
}

void service::impl::write_user(json::writer& w, const user& u,
                               const std::vector<std::string>& select) {
  auto want = [&](std::string_view p) {
    if (select.empty())
      return p != "accountEnabled";
    for (auto& s : select)
      if (s == p)
        return true;
    return false;
  };
  w.begin_object();
  if (want("businessPhones"))
    w.key("businessPhones").begin_array().end_array();
  if (want("displayName"))
    w.key("displayName").value(u.display_name);
  for (const char* nul : {"givenName", "jobTitle", "mobilePhone",
                          "officeLocation", "preferredLanguage", "surname"})
    if (want(nul))
      w.key(nul).null();
  if (want("mail")) {
    w.key("mail");
    if (u.mail.empty())
      w.null();
    else
      w.value(u.mail);
  }
  if (want("userPrincipalName"))
    w.key("userPrincipalName").value(u.user_principal_name);
  if (want("accountEnabled"))
    w.key("accountEnabled").value(true);
  if (want("id"))
    w.key("id").value(u.id);
  w.end_object();
}

// -- routes

void service::impl::install_users_routes() {
  auto self = this;

  // ---- Graph: users
  // ------------------------------------------------------------------------

  routes.add(
      "GET", "/v1.0/users",
      [self](request& req, const http::path_params&, responder_ptr r) {
        http::query_params q;
        if (!http::parse_query(req.query, q))
          return r->reply(graph_error(req, 400, "BadRequest",
                                      "Invalid query string.", self->now()));
        size_t top = default_user_page, skip = 0;
        if (auto v = http::find_param(q, "$top")) {
          char* end = nullptr;
          auto n = std::strtol(v->c_str(), &end, 10);
          if (v->empty() || *end != '\0' || n < 1 || n > 999)
            return r->reply(
                graph_error(req, 400, "Request_UnsupportedQuery",
                            "Invalid page size specified: '" + *v
                                + "'. Must be between 1 and 999 inclusive.",
                            self->now()));
          top = static_cast<size_t>(n);
        }
        if (auto v = http::find_param(q, "$skiptoken")) {
          auto n = parse_hex16(*v);
          if (!n)
            return r->reply(graph_error(req, 400, "Request_BadRequest",
                                        "Invalid skip token.", self->now()));
          skip = static_cast<size_t>(*n);
        }
        std::vector<std::string> select;
        if (!read_user_select(req, q, r, select, self->now()))
          return;
        std::lock_guard<std::mutex> guard{self->mtx};
        response err;
        auto tok = self->check_token(req, err);
        if (tok == nullptr)
          return r->reply(std::move(err));
        auto& t = self->dir.tenants[tok->tenant_id];
        auto base = base_url(req);
        json::writer w;
        w.begin_object();
        w.key("@odata.context").value(base + "/v1.0/$metadata#users");
        size_t end = std::min(t.user_ids.size(), skip + top);
        if (end < t.user_ids.size()) {
          std::string next = base + "/v1.0/users?$top=" + std::to_string(top);
          if (auto v = http::find_param(q, "$select"))
            next += "&$select=" + http::percent_encode(*v);
          next += "&$skiptoken=" + to_hex16(end);
          w.key("@odata.nextLink").value(next);
        }
        w.key("value").begin_array();
        for (size_t i = skip; i < end; ++i)
          self->write_user(w, self->dir.users[t.user_ids[i]], select);
        w.end_array().end_object();
        r->reply(json_response(200, w.take()));
      });

  routes.add(
      "GET", "/v1.0/users/{user}",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        response err;
        auto tok = self->check_token(req, err);
        if (tok == nullptr)
          return r->reply(std::move(err));
        auto u = self->resolve_user(req, r, *tok, pp[0]);
        if (u == nullptr)
          return;
        http::query_params q;
        http::parse_query(req.query, q);
        std::vector<std::string> select;
        if (!read_user_select(req, q, r, select, self->now()))
          return;
        json::writer w;
        self->write_user(w, *u, select);
        r->reply(json_response(200, w.take()));
      });
}

} // namespace crmsync::emulator
