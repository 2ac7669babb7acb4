// The user lifecycle routes: PATCH a user (name, profile, permissions) and
// deactivate or reactivate one. Each becomes one update_user to the tenant
// actor, which checks who may grant what (protocol/permissions.hpp).
#include "api/api_impl.hpp"

#include "protocol/json.hpp"

namespace crmsync::http {

namespace {

/// Sends `cmd` for the user named by the path ({org}, {user}) and answers
/// with the user as it is now.
void send_user_update(api::impl* self, const principal& p,
                      const path_params& pp, update_user cmd, responder_ptr r) {
  auto uid = user_id::parse(pp[1]);
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
}

} // namespace crmsync::http
