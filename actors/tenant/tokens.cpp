// The caller's own API tokens: listed without secrets, made with a name and
// an expiry, revoked one by one. Only the token's owner reaches them: every
// command acts on the user whose token is presented.
#include "actors/tenant/handlers.hpp"

#include <algorithm>

namespace crmsync::actors::tenant_impl {

namespace {

constexpr size_t max_api_tokens = 20;

/// The caller as a user: the service admin has no tokens of its own.
caf::expected<const user_record*> token_owner(self_ptr self,
                                              const caller& who) {
  auto u = check_caller(self, who);
  if (!u)
    return u.error();
  if (*u == nullptr)
    return invalid("token", "the service admin token is nobody's user and "
                            "has no tokens to manage");
  return *u;
}

std::vector<token_info> tokens_of(self_ptr self, const user_record& u,
                                  const std::string& current) {
  std::vector<token_info> out;
  auto ttl = self->state.env->session_ttl_ms;
  bool primary_by_signin = false;
  for (size_t i = 0; i < u.signin_token_hashes.size(); ++i) {
    auto& h = u.signin_token_hashes[i];
    primary_by_signin = primary_by_signin || h == u.token_hash;
    out.push_back({token_id(h), "", "signin", u.signin_issued(i),
                   u.signin_issued(i) + ttl, unmarked_token(h) == current});
  }
  if (!u.token_hash.empty() && !primary_by_signin)
    out.push_back({token_id(u.token_hash), "", "account", u.created_ms, 0,
                   u.token_hash == current});
  for (auto& t : u.api_tokens)
    out.push_back({token_id(t.hash), t.name, "api", t.created_ms, t.expires_ms,
                   t.hash == current});
  return out;
}

} // namespace

caf::result<token_list> handle(self_ptr self, list_tokens& cmd) {
  auto u = token_owner(self, cmd.who);
  if (!u)
    return u.error();
  token_list out;
  out.items = tokens_of(self, **u, cmd.who.token_hash);
  return out;
}

caf::result<token_info> handle(self_ptr self, create_token& cmd) {
  auto& st = self->state;
  log::scope traced{caller_context(self, cmd.who)};
  auto found = token_owner(self, cmd.who);
  if (!found)
    return found.error();
  auto u = **found;
  if (u.api_tokens.size() >= max_api_tokens)
    return make_crm_error(crm_errc::conflict, "too_many_tokens",
                          "a user holds at most "
                              + std::to_string(max_api_tokens)
                              + " tokens; revoke one first");
  auto now = st.env->now_ms();
  cmd.token.created_ms = now;
  if (cmd.token.expires_ms <= now)
    return invalid("expires_at", "the expiry must be in the future");
  u.api_tokens.push_back(cmd.token);
  u.modified_ms = now;
  storage::write_batch b;
  put_user(b, u);
  put_audit(self, b, actor_name(&u), "token.created",
            "API token " + token_id(cmd.token.hash) + " \"" + cmd.token.name
                + "\"");
  if (auto err = st.env->db->write(b))
    return err;
  st.users[u.id] = u;
  return token_info{token_id(cmd.token.hash), cmd.token.name,       "api",
                    cmd.token.created_ms,     cmd.token.expires_ms, false};
}

caf::result<token_info> handle(self_ptr self, revoke_token& cmd) {
  log::scope traced{caller_context(self, cmd.who)};
  auto& st = self->state;
  auto found = token_owner(self, cmd.who);
  if (!found)
    return found.error();
  auto u = **found;
  auto listed = tokens_of(self, u, cmd.who.token_hash);
  auto it = std::find_if(listed.begin(), listed.end(),
                         [&](const token_info& t) { return t.id == cmd.id; });
  if (cmd.id.size() != 16 || it == listed.end())
    return not_found("token");
  auto is_it = [&](const std::string& h) {
    return !h.empty() && token_id(h) == cmd.id;
  };
  u.api_tokens.erase(
      std::remove_if(u.api_tokens.begin(), u.api_tokens.end(),
                     [&](const api_token& t) { return is_it(t.hash); }),
      u.api_tokens.end());
  // Sign-in hashes and their issue times go together.
  for (size_t i = u.signin_token_hashes.size(); i-- > 0;)
    if (is_it(u.signin_token_hashes[i])) {
      u.signin_token_hashes.erase(u.signin_token_hashes.begin() + i);
      if (i < u.signin_issued_ms.size())
        u.signin_issued_ms.erase(u.signin_issued_ms.begin() + i);
    }
  if (is_it(u.token_hash))
    u.token_hash.clear();
  u.modified_ms = st.env->now_ms();
  storage::write_batch b;
  put_user(b, u);
  put_audit(self, b, actor_name(&u), "token.revoked",
            it->kind + " token " + it->id
                + (it->name.empty() ? "" : " \"" + it->name + "\""));
  if (auto err = st.env->db->write(b))
    return err;
  st.users[u.id] = u;
  return *it;
}

} // namespace crmsync::actors::tenant_impl
