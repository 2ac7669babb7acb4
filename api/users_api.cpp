// The user lifecycle routes: PATCH a user (name, profile, permissions),
// deactivate or reactivate one (each an update_user to the tenant actor,
// which checks who may grant what: protocol/permissions.hpp), delete a
// deactivated one, revoke an invitation, reject a join request, and the
// caller's own API tokens. The e-mailed link to set a first password is
// password_setup_api.cpp's.
#include "api/api_impl.hpp"

#include "common/clock.hpp"
#include "protocol/json.hpp"

namespace crmsync::http {

namespace {

/// Sends `cmd` for the user named by the path ({org}, {user}) and answers
/// with the user as it is now.
void send_user_update(api::impl* self, const principal& p,
                      const path_params& pp, update_user cmd, responder_ptr r) {
  std::optional<user_id> uid;
  if (!self->user_param(p, pp[1], r, uid))
    return;
  self->with_org(p, pp[0], r, [self, cmd, uid, r](tenant_id org) mutable {
    if (!uid)
      return fail(r, 404, "not_found", "user not found");
    cmd.id = *uid;
    self->ask<user_record>(
        api::impl::tenant_key(org), cmd, r, [r](user_record& u) {
          r->reply(json_response(200, api::impl::user_with_token(u, "")));
        });
  });
}

void write_token(json::writer& w, const token_info& t) {
  w.begin_object();
  w.key("id").value(t.id);
  w.key("name").value_or_null(t.name);
  w.key("kind").value(t.kind);
  w.key("created_at");
  if (t.created_ms == 0)
    w.null();
  else
    w.value(format_rfc3339(t.created_ms));
  w.key("expires_at");
  if (t.expires_ms == 0)
    w.null();
  else
    w.value(format_rfc3339(t.expires_ms));
  w.key("current").value(t.current);
  w.end_object();
}

std::string token_json(const token_info& t, const std::string& secret) {
  json::writer w;
  write_token(w, t);
  std::string body = w.take();
  if (!secret.empty()) {
    // Shown once: only its hash is stored.
    body.pop_back();
    body += ",\"token\":";
    json::append_string(body, secret);
    body += '}';
  }
  return body;
}

/// What a revoked invitation or a rejected join request looks like in the
/// answer: the fields the lists show for it that changed, and who it was.
std::string resolved_json(uint64_t id, const std::string& email,
                          const char* status, int64_t resolved_ms) {
  json::writer w;
  w.begin_object();
  w.key("id").value(to_hex16(id));
  w.key("email").value(email);
  w.key("status").value(status);
  w.key("resolved").value(format_rfc3339(resolved_ms));
  w.end_object();
  return w.take();
}

/// Sends `cmd` (its `who` set here) about the item {id} of organization
/// {org}; an id that does not parse is `what` not found.
template <class Reply, class Cmd, class Ok>
void send_item_command(api::impl* self, const request& req,
                       const path_params& pp, responder_ptr r, const char* what,
                       Cmd cmd, uint64_t Cmd::*field, Ok ok) {
  principal p;
  if (!self->authenticate(req, r, p))
    return;
  cmd.who = p.who;
  auto id = parse_hex16(pp[1]);
  self->with_org(
      p, pp[0], r, [self, cmd, field, id, r, what, ok](tenant_id org) mutable {
        if (!id)
          return fail(r, 404, "not_found", std::string{what} + " not found");
        cmd.*field = *id;
        self->ask<Reply>(api::impl::tenant_key(org), cmd, r, ok);
      });
}

/// The caller's own user for /api/v1/me/...: the service admin has none.
bool own_user(const principal& p, const responder_ptr& r) {
  if (!p.who.service_admin)
    return true;
  fail(r, 400, "invalid_field",
       "the service-admin token is nobody's user and has no tokens to manage",
       "token");
  return false;
}

} // namespace

void api::impl::install_user_routes() {
  auto self = this; // routes live as long as the impl that owns them
  routes.add("PATCH", "/api/v1/orgs/{org}/users/{user}",
             [self](request& req, const path_params& pp, responder_ptr r) {
               principal p;
               if (!self->authenticate_json(req, r, p))
                 return;
               update_user cmd;
               cmd.who = p.who;
               if (auto err = json::decode_user_patch(req.body, cmd.patch))
                 return fail(r, err);
               send_user_update(self, p, pp, std::move(cmd), r);
             });
  for (bool active : {false, true}) {
    routes.add(
        "POST",
        active ? "/api/v1/orgs/{org}/users/{user}/activate"
               : "/api/v1/orgs/{org}/users/{user}/deactivate",
        [self, active](request& req, const path_params& pp, responder_ptr r) {
          principal p;
          if (!self->authenticate(req, r, p))
            return;
          update_user cmd;
          cmd.who = p.who;
          cmd.patch.set_active = true;
          cmd.patch.active = active;
          send_user_update(self, p, pp, std::move(cmd), r);
        });
  }
  // t14-life3: deleting a deactivated user with their data.
  routes.add("DELETE", "/api/v1/orgs/{org}/users/{user}",
             [self](request& req, const path_params& pp, responder_ptr r) {
               principal p;
               if (!self->authenticate(req, r, p))
                 return;
               std::optional<user_id> uid;
               if (!self->user_param(p, pp[1], r, uid))
                 return;
               self->with_org(p, pp[0], r, [self, p, uid, r](tenant_id org) {
                 if (!uid)
                   return fail(r, 404, "not_found", "user not found");
                 delete_user cmd;
                 cmd.who = p.who;
                 cmd.id = *uid;
                 self->ask<user_deleted>(
                     api::impl::tenant_key(org), cmd, r, [r](user_deleted& d) {
                       json::writer w;
                       w.begin_object().key("deleted");
                       json::write_user(w, d.user);
                       w.key("events_deleted").value(d.events);
                       w.end_object();
                       r->reply(json_response(200, w.take()));
                     });
               });
             });
  // t14-life3: revoking an invitation, rejecting a join request.
  routes.add("DELETE", "/api/v1/orgs/{org}/invites/{id}",
             [self](request& req, const path_params& pp, responder_ptr r) {
               send_item_command<invite_record>(
                   self, req, pp, r, "invitation", revoke_invite{},
                   &revoke_invite::invite, [r](invite_record& x) {
                     r->reply(json_response(
                         200, resolved_json(x.id, x.email, to_string(x.status),
                                            x.resolved_ms)));
                   });
             });
  routes.add("POST", "/api/v1/orgs/{org}/join-requests/{id}/reject",
             [self](request& req, const path_params& pp, responder_ptr r) {
               send_item_command<join_request_record>(
                   self, req, pp, r, "join request", reject_join{},
                   &reject_join::request, [r](join_request_record& x) {
                     r->reply(json_response(
                         200, resolved_json(x.id, x.email, to_string(x.status),
                                            x.resolved_ms)));
                   });
             });
  // t14-life3: the caller's own API tokens.
  routes.add("GET", "/api/v1/me/tokens",
             [self](request& req, const path_params&, responder_ptr r) {
               principal p;
               if (!self->authenticate(req, r, p) || !own_user(p, r))
                 return;
               self->ask<token_list>(
                   tenant_key(p.token_org), list_tokens{p.who}, r,
                   [r](token_list& l) {
                     json::writer w;
                     w.begin_object().key("items").begin_array();
                     for (auto& t : l.items)
                       write_token(w, t);
                     w.end_array().end_object();
                     r->reply(json_response(200, w.take()));
                   });
             });
  routes.add("POST", "/api/v1/me/tokens",
             [self](request& req, const path_params&, responder_ptr r) {
               principal p;
               if (!self->authenticate_json(req, r, p) || !own_user(p, r))
                 return;
               json::token_body body;
               if (auto err
                   = json::decode_token_create(req.body, system_now_ms(), body))
                 return fail(r, err);
               auto secret
                   = make_user_token(p.token_org.value, p.who.user.value);
               create_token cmd;
               cmd.who = p.who;
               cmd.token.name = body.name;
               cmd.token.hash = crypto::sha256_hex(secret);
               cmd.token.expires_ms = body.expires_ms;
               self->ask<token_info>(
                   tenant_key(p.token_org), cmd, r, [r, secret](token_info& t) {
                     r->reply(json_response(201, token_json(t, secret)));
                   });
             });
  routes.add("DELETE", "/api/v1/me/tokens/{id}",
             [self](request& req, const path_params& pp, responder_ptr r) {
               principal p;
               if (!self->authenticate(req, r, p) || !own_user(p, r))
                 return;
               self->ask<token_info>(
                   tenant_key(p.token_org), revoke_token{p.who, pp[0]}, r,
                   [r](token_info& t) {
                     r->reply(json_response(200, token_json(t, "")));
                   });
             });
}

} // namespace crmsync::http
