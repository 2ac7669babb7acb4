#include "api/api.hpp"
#include "api/api_impl.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/make_message.hpp>

#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "common/time_format.hpp"
#include "http/url.hpp"
#include "protocol/json.hpp"
#include "protocol/type_ids.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "sync/service.hpp"

namespace crmsync::http {

namespace keys = storage::keys;
namespace codec = storage::codec;
using storage::column;
using namespace crmsync::atom;

// -- tokens
// ---------------------------------------------------------------------------

namespace {

constexpr std::string_view token_prefix = "crm_";
constexpr size_t token_secret_bytes = 32;
constexpr size_t token_secret_chars = 43; // base64url of 32 bytes

} // namespace

std::string make_user_token(uint64_t org, uint64_t user) {
  std::string t{token_prefix};
  t += to_hex16(org);
  t += to_hex16(user);
  t += crypto::random_token(token_secret_bytes);
  return t;
}

std::string make_setup_token(uint64_t org, uint64_t user) {
  return "pws_" + make_user_token(org, user).substr(token_prefix.size());
}

bool parse_setup_token(std::string_view token, uint64_t& org, uint64_t& user) {
  if (token.substr(0, 4) != "pws_")
    return false;
  return parse_user_token(
      std::string{token_prefix} + std::string{token.substr(4)}, org, user);
}

bool parse_user_token(std::string_view token, uint64_t& org, uint64_t& user) {
  if (token.size() != token_prefix.size() + 32 + token_secret_chars
      || token.substr(0, token_prefix.size()) != token_prefix)
    return false;
  auto o = parse_hex16(token.substr(token_prefix.size(), 16));
  auto u = parse_hex16(token.substr(token_prefix.size() + 16, 16));
  if (!o || !u)
    return false;
  org = *o;
  user = *u;
  return true;
}

// -- organizations and users
// ---------------------------------------------------------

void api::impl::email_free_in_cluster(const std::string& email,
                                      const char* field, const responder_ptr& r,
                                      std::function<void()> free) {
  if (!cluster.read_async)
    return free(); // one node: the tenant actor's claim decides, atomically
  read_global_async(
      column::lookup, {keys::email_lookup(email)}, false,
      [r, field, free](std::vector<cluster_hooks::read_answer> a) {
        using outcome = cluster_hooks::read_outcome;
        if (!a.empty() && a[0].outcome == outcome::found)
          return fail(r, 409, "email_taken",
                      "a user with this e-mail address already exists", field);
        if (a.empty() || a[0].outcome == outcome::unavailable)
          return fail(r, 503, "node_unavailable",
                      "a node that may hold this is unreachable; retry");
        free();
      });
}

void api::impl::create_org_attempt(std::shared_ptr<create_org> cmd,
                                   responder_ptr r, int attempts_left) {
  tenant_id org{crypto::random_u64()};
  cmd->admin.id = user_id{crypto::random_u64()};
  if (!org.valid() || !cmd->admin.id.valid()) {
    if (attempts_left <= 0)
      return fail(r, 503, "busy", "could not allocate an id; retry");
    return create_org_attempt(cmd, r, attempts_left - 1);
  }
  auto token = make_user_token(org.value, cmd->admin.id.value);
  cmd->admin.token_hash = crypto::sha256_hex(token);
  auto self = shared_from_this();
  ask<org_created>(
      tenant_key(org), *cmd,
      [r, token](org_created& x) {
        json::writer w;
        w.begin_object().key("org");
        json::write_org(w, x.org);
        w.key("admin").raw(user_with_token(x.admin, token));
        w.end_object();
        r->reply(json_response(201, w.take()));
      },
      [self, cmd, r, attempts_left](const caf::error& err) {
        if (is_code(err, crm_errc::conflict, "id_collision")
            && attempts_left > 0)
          return self->create_org_attempt(cmd, r, attempts_left - 1);
        fail(r, err);
      });
}

void api::impl::create_user_attempt(std::shared_ptr<create_user> cmd,
                                    tenant_id org, responder_ptr r,
                                    int attempts_left) {
  cmd->user.id = user_id{crypto::random_u64()};
  if (!cmd->user.id.valid()) {
    if (attempts_left <= 0)
      return fail(r, 503, "busy", "could not allocate an id; retry");
    return create_user_attempt(cmd, org, r, attempts_left - 1);
  }
  auto token = make_user_token(org.value, cmd->user.id.value);
  cmd->user.token_hash = crypto::sha256_hex(token);
  std::string setup_url;
  if (cmd->user.password_hash.empty()) {
    // No password: the person is invited to set one (users_api.cpp).
    cmd->setup_token = make_setup_token(org.value, cmd->user.id.value);
    cmd->setup_token_hash = crypto::sha256_hex(cmd->setup_token);
    cmd->setup_expires_ms = system_now_ms() + cfg.password_setup_lifetime_ms;
    cmd->public_url = o365.public_url;
    setup_url = o365.public_url + "/password-setup/" + cmd->setup_token;
  }
  auto self = shared_from_this();
  ask<user_record>(
      tenant_key(org), *cmd,
      [r, token, setup_url](user_record& u) {
        auto body = user_with_token(u, token);
        if (!setup_url.empty()) {
          body.pop_back();
          body += ",\"password_setup_url\":";
          json::append_string(body, setup_url);
          body += '}';
        }
        r->reply(json_response(201, body));
      },
      [self, cmd, org, r, attempts_left](const caf::error& err) {
        if (is_code(err, crm_errc::conflict, "id_collision")
            && attempts_left > 0)
          return self->create_user_attempt(cmd, org, r, attempts_left - 1);
        fail(r, err);
      });
}

// -- admin: actor introspection, passivation, resync (crmsyncctl console)
// -----------------------------------------------------------------------------

namespace {

// KIND/ID of the admin actor routes as an entity key: a tenant by its id, a
// mailbox or calendar by its user's id or e-mail address. Answers 404
// itself and returns false when there is no such entity.
bool console_entity(api::impl* s, const std::string& kind,
                    const std::string& id, entity_key& key,
                    const responder_ptr& r) {
  if (kind == "tenant") {
    auto org = tenant_id::parse(id);
    if (!org) {
      fail(r, 404, "not_found", "organization not found");
      return false;
    }
    key = entity_key{entity_kind::tenant, *org, user_id{}};
    return true;
  }
  if (kind != "mailbox" && kind != "calendar") {
    fail(r, 404, "not_found",
         "no actor kind '" + kind + "'; kinds are tenant, mailbox, calendar");
    return false;
  }
  caf::error err;
  tenant_id org;
  user_id uid;
  if (!s->lookup_user(id, org, uid, err)) {
    if (err)
      fail(r, err);
    else
      fail(r, 404, "not_found", "user not found");
    return false;
  }
  key = entity_key{kind == "mailbox" ? entity_kind::mailbox
                                     : entity_kind::calendar,
                   org, uid};
  return true;
}

// The directory that holds `key`'s actor: this node's, or in a cluster the
// owner's. Calls ok(result) with the directory's answer; errors are answered.
template <class Reply, class Atom, class Ok>
void ask_directory_about(api::impl* s, Atom atom, const entity_key& key,
                         const responder_ptr& r, Ok ok) {
  caf::actor dir = s->directory;
  if (s->cluster.directory_for) {
    auto owner = s->cluster.directory_for(key.tenant);
    if (!owner)
      return fail(r, owner.error());
    dir = std::move(*owner);
  }
  s->ask_actor<Reply>(std::move(dir), caf::make_message(atom, key),
                      std::move(ok),
                      [r](const caf::error& err) { fail(r, err); });
}

void write_timer(json::writer& w, const char* name, int64_t at_ms,
                 const char* what) {
  if (at_ms == 0)
    return;
  w.begin_object();
  w.key("name").value(name);
  w.key("at").value(format_rfc3339_ms(at_ms));
  w.key("what").value(what);
  w.end_object();
}

// The kind-specific part, from what the entity has stored (reading it does
// not send the actor a message, so looking does not keep it alive).
void write_entity_summary(api::impl* s, json::writer& w,
                          const entity_key& key) {
  std::string v;
  bool found = false;
  w.key("summary").begin_object();
  if (key.kind == entity_kind::tenant) {
    org_record o;
    if (!s->db.get(column::orgs, keys::org(key.tenant), v, found) && found
        && codec::decode(v, o)) {
      w.key("name").value(o.name);
      w.key("edition").value(to_string(o.plan));
      w.key("users").value(o.user_count);
      w.key("events").value(o.event_count);
      w.key("office365_tenant").value_or_null(o.o365_tenant);
    }
  } else if (key.kind == entity_kind::mailbox) {
    // The link to Office 365 is the user's (sign-in, invitation, join):
    // the mailbox actor keeps no copy of it.
    user_record u;
    if (!s->db.get(column::users, keys::user(key.tenant, key.user), v, found)
        && found)
      codec::decode(v, u);
    w.key("office365_linked").value(!u.o365_user.empty());
    w.key("office365_user").value_or_null(u.o365_user);
  } else {
    calendar_status cal;
    if (!s->db.get(
            column::sync,
            keys::sync_state(key.tenant, key.user, entity_kind::calendar), v,
            found)
        && found)
      codec::decode(v, cal);
    w.key("state").value(to_string(cal.state));
    w.key("progress").begin_object();
    w.key("done").value(cal.done);
    w.key("total").value(cal.total);
    w.end_object();
    w.key("last_sync").time_or_null(cal.last_sync_ms);
    w.key("last_error").value_or_null(cal.last_error);
    w.key("subscription_expires").time_or_null(cal.subscription_expires_ms);
  }
  w.end_object();
}

/// GET /admin/v1/actors/{kind}/{id}: one live actor's state summary.
void admin_actor(api::impl* s, const std::string& kind, const std::string& id,
                 const responder_ptr& r) {
  entity_key key;
  if (!console_entity(s, kind, id, key, r))
    return;
  ask_directory_about<live_actor>(
      s, stats_atom_v, key, r, [s, r](live_actor& la) {
        auto now = system_now_ms();
        const auto& key = la.key;
        json::writer w;
        w.begin_object();
        w.key("kind").value(to_string(key.kind));
        w.key("id").value(key.kind == entity_kind::tenant ? key.tenant.str()
                                                          : key.user.str());
        w.key("tenant").value(key.tenant.str());
        if (key.kind == entity_kind::tenant)
          w.key("user").null();
        else
          w.key("user").value(key.user.str());
        w.key("node").value(s->info.node_id);
        w.key("activated_at").value(format_rfc3339_ms(now - la.active_ms));
        w.key("last_message_at").value(format_rfc3339_ms(now - la.idle_ms));
        w.key("idle_ms").value(la.idle_ms);
        w.key("messages").value(la.messages);
        if (la.mailbox < 0)
          w.key("queue").null();
        else
          w.key("queue").value(la.mailbox);
        w.key("stopping").value(la.stopping);
        w.key("timers").begin_array();
        if (!la.stopping)
          write_timer(w, "passivation", now + la.passivate_in_ms,
                      "passivated when idle until then");
        sync::user_timers t;
        bool engine = key.kind == entity_kind::calendar && s->o365.sync;
        if (engine) {
          t = s->o365.sync->timers(key.tenant, key.user);
          write_timer(w, "retry", t.retry_at_ms,
                      "the last sync run failed; the next attempt");
          write_timer(w, "reconcile", t.reconcile_at_ms,
                      "the user's delta is read (reconciliation, at the user's "
                      "phase of the interval)");
          write_timer(w, "subscription_renewal", t.renew_at_ms,
                      "the Graph subscription is renewed (half its life)");
        }
        w.end_array();
        if (engine) {
          w.key("sync_run").begin_object();
          w.key("running").value(t.running);
          w.key("queued").value(t.again);
          w.key("resync_pending").value(t.full_round);
          w.key("failed_runs").value(static_cast<int64_t>(t.retry_attempt));
          w.end_object();
        }
        write_entity_summary(s, w, key);
        w.end_object();
        r->reply(json_response(200, w.take()));
      });
}

/// POST /admin/v1/actors/{kind}/{id}/passivate: passivate now.
void admin_passivate(api::impl* s, const std::string& kind,
                     const std::string& id, const responder_ptr& r) {
  entity_key key;
  if (!console_entity(s, kind, id, key, r))
    return;
  ask_directory_about<bool>(
      s, passivate_atom_v, key, r, [r, key, kind](bool& started) {
        if (!started)
          return fail(r, 404, "not_found",
                      "no live " + kind
                          + " actor with this id (or it is already stopping)");
        json::writer w;
        w.begin_object();
        w.key("kind").value(kind);
        w.key("id").value(key.kind == entity_kind::tenant ? key.tenant.str()
                                                          : key.user.str());
        w.key("state").value("passivating");
        w.end_object();
        r->reply(json_response(202, w.take()));
      });
}

/// POST /admin/v1/users/{id}/resync: the next run reads the whole window.
void admin_resync(api::impl* s, const std::string& id, const responder_ptr& r) {
  tenant_id org;
  user_id uid;
  caf::error err;
  if (!s->lookup_user(id, org, uid, err))
    return err ? fail(r, err) : fail(r, 404, "not_found", "user not found");
  if (s->o365.sync == nullptr)
    return fail(r, 503, "sync_unavailable",
                "calendar sync is not running on this node");
  std::string v;
  bool found = false;
  calendar_status cal;
  if ((err = s->db.get(column::sync,
                       keys::sync_state(org, uid, entity_kind::calendar), v,
                       found)))
    return fail(r, err);
  if (found)
    codec::decode(v, cal);
  if (!found || cal.state == calendar_state::disabled)
    return fail(r, 409, "sync_disabled",
                "calendar sync is not enabled for this user");
  auto requested = system_now_ms();
  s->o365.sync->resync(org, uid);
  json::writer w;
  w.begin_object();
  w.key("user").value(uid.str());
  w.key("org").value(org.str());
  w.key("state").value(to_string(cal.state));
  w.key("requested_at").value(format_rfc3339_ms(requested));
  w.end_object();
  r->reply(json_response(202, w.take()));
}

} // namespace

void api::impl::install_routes() {
  auto self = this; // routes live as long as the impl that owns them

  routes.add("GET", "/healthz",
             [](request&, const path_params&, responder_ptr r) {
               r->reply(json_response(200, "{\"status\":\"ok\"}"));
             });
  routes.add(
      "GET", "/readyz", [self](request&, const path_params&, responder_ptr r) {
        if (!self->ready)
          return fail(r, 503, "shutting_down", "the node is shutting down");
        if (self->cluster.view_ready && !self->cluster.view_ready())
          return fail(r, 503, "cluster_not_ready",
                      "the node cannot serve the cluster yet: a member is "
                      "not reached (or, with etcd, it is not registered or "
                      "has not read the shard map)");
        r->reply(json_response(200, "{\"status\":\"ready\"}"));
      });

  // POST /api/v1/orgs
  routes.add("POST", "/api/v1/orgs",
             [self](request& req, const path_params&, responder_ptr r) {
               principal p;
               if (!self->authenticate(req, r, p))
                 return;
               if (!p.who.service_admin)
                 return self->refuse_user(p, r,
                                          "creating organizations needs the "
                                          "service admin token");
               if (!self->require_json(req, r))
                 return;
               json::org_body body;
               if (auto err = json::decode_org_create(req.body, body))
                 return fail(r, err);
               auto cmd = std::make_shared<create_org>();
               cmd->who = p.who;
               cmd->name = body.name;
               cmd->plan = body.plan;
               cmd->admin.email = body.admin_email;
               cmd->admin.name = body.admin_name;
               cmd->admin.role = profile::administrator;
               cmd->admin.manage_users = true;
               auto go = [s = self->shared_from_this(), cmd, r] {
                 s->email_free_in_cluster(
                     cmd->admin.email, "admin.email", r,
                     [s, cmd, r] { s->create_org_attempt(cmd, r, 3); });
               };
               if (body.admin_password.empty())
                 return go();
               self->hash_then(hash_caller(p), false, r,
                               [cmd, pw = body.admin_password, go] {
                                 cmd->admin.password_hash
                                     = crypto::hash_password(pw);
                                 go();
                               });
             });

  routes.add("GET", "/api/v1/orgs/{org}",
             [self](request& req, const path_params& pp, responder_ptr r) {
               principal p;
               if (!self->authenticate(req, r, p))
                 return;
               self->with_org(p, pp[0], r, [self, p, r](tenant_id org) {
                 self->ask<org_record>(tenant_key(org), get_org{p.who}, r,
                                       [r](org_record& o) {
                                         json::writer w;
                                         json::write_org(w, o);
                                         r->reply(json_response(200, w.take()));
                                       });
               });
             });

  routes.add("PATCH", "/api/v1/orgs/{org}",
             [self](request& req, const path_params& pp, responder_ptr r) {
               principal p;
               if (!self->authenticate_json(req, r, p))
                 return;
               update_org cmd;
               cmd.who = p.who;
               if (auto err = json::decode_org_patch(req.body, cmd))
                 return fail(r, err);
               self->with_org(p, pp[0], r, [self, cmd, r](tenant_id org) {
                 self->ask<org_record>(tenant_key(org), cmd, r,
                                       [r](org_record& o) {
                                         json::writer w;
                                         json::write_org(w, o);
                                         r->reply(json_response(200, w.take()));
                                       });
               });
             });

  routes.add(
      "POST", "/api/v1/orgs/{org}/users",
      [self](request& req, const path_params& pp, responder_ptr r) {
        principal p;
        if (!self->authenticate_json(req, r, p))
          return;
        json::user_body body;
        if (auto err = json::decode_user_create(req.body, body))
          return fail(r, err);
        self->with_org(p, pp[0], r, [self, p, body, r](tenant_id org) {
          auto cmd = std::make_shared<create_user>();
          cmd->who = p.who;
          cmd->user.email = body.email;
          cmd->user.name = body.name;
          cmd->user.role = body.role;
          cmd->user.manage_users = body.manage_users;
          cmd->user.view_all_events = body.view_all_events;
          cmd->user.super_admin = body.super_admin;
          auto go = [s = self->shared_from_this(), cmd, org, r] {
            s->email_free_in_cluster(
                cmd->user.email, "email", r,
                [s, cmd, org, r] { s->create_user_attempt(cmd, org, r, 3); });
          };
          self->with_user_manager(p, org, r, [self, p, cmd, body, r, go] {
            if (body.password.empty())
              return go();
            self->hash_then(
                hash_caller(p), false, r, [cmd, pw = body.password, go] {
                  cmd->user.password_hash = crypto::hash_password(pw);
                  go();
                });
          });
        });
      });

  routes.add(
      "GET", "/api/v1/orgs/{org}/users",
      [self](request& req, const path_params& pp, responder_ptr r) {
        principal p;
        if (!self->authenticate(req, r, p))
          return;
        query_params q;
        list_users cmd;
        cmd.who = p.who;
        if (!self->read_query(req, r, q) || !self->read_limit(q, r, cmd.limit))
          return;
        if (auto c = find_param(q, "cursor")) {
          auto after = user_id::parse(*c);
          if (!after)
            return fail(r, 400, "invalid_field",
                        "'cursor' is not a cursor from this listing", "cursor");
          cmd.after = *after;
        }
        self->with_org(p, pp[0], r, [self, cmd, r](tenant_id org) {
          self->ask<user_page>(tenant_key(org), cmd, r, [r](user_page& page) {
            json::writer w;
            w.begin_object().key("items").begin_array();
            for (auto& u : page.items)
              json::write_user(w, u);
            w.end_array().key("next_cursor").id_or_null(page.next);
            w.end_object();
            r->reply(json_response(200, w.take()));
          });
        });
      });

  routes.add("GET", "/api/v1/orgs/{org}/users/{user}",
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
                 self->ask<user_record>(
                     tenant_key(org), get_user{p.who, *uid}, r,
                     [r](user_record& u) {
                       r->reply(json_response(200, user_with_token(u, "")));
                     });
               });
             });

  // -- events
  // ------------------------------------------------------------------------

  routes.add(
      "POST", "/api/v1/orgs/{org}/users/{user}/events",
      [self](request& req, const path_params& pp, responder_ptr r) {
        principal p;
        if (!self->authenticate_json(req, r, p))
          return;
        create_event cmd;
        cmd.who = p.who;
        if (auto err = json::decode_event_create(req.body, cmd.draft))
          return fail(r, err);
        std::optional<user_id> uid;
        if (!self->user_param(p, pp[1], r, uid))
          return;
        self->with_org(p, pp[0], r, [self, cmd, uid, r](tenant_id org) mutable {
          if (!uid)
            return fail(r, 404, "not_found", "user not found");
          cmd.draft.owner = *uid;
          self->ask<event_record>(tenant_key(org), cmd, r,
                                  [r](event_record& e) {
                                    r->reply(json_response(201, event_json(e)));
                                  });
        });
      });

  routes.add(
      "GET", "/api/v1/orgs/{org}/users/{user}/events",
      [self](request& req, const path_params& pp, responder_ptr r) {
        principal p;
        if (!self->authenticate(req, r, p))
          return;
        query_params q;
        list_events cmd;
        cmd.who = p.who;
        cmd.from_ms = std::numeric_limits<int64_t>::min();
        cmd.to_ms = std::numeric_limits<int64_t>::max();
        if (!self->read_query(req, r, q) || !self->read_limit(q, r, cmd.limit)
            || !self->read_time_param(q, "from", r, cmd.from_ms)
            || !self->read_time_param(q, "to", r, cmd.to_ms))
          return;
        if (cmd.to_ms < cmd.from_ms)
          return fail(r, 400, "invalid_field", "'to' must not be before 'from'",
                      "to");
        if (auto c = find_param(q, "cursor"))
          cmd.cursor = *c;
        std::optional<user_id> uid;
        if (!self->user_param(p, pp[1], r, uid))
          return;
        self->with_org(p, pp[0], r, [self, cmd, uid, r](tenant_id org) mutable {
          if (!uid)
            return fail(r, 404, "not_found", "user not found");
          cmd.owner = *uid;
          self->ask<event_page>(tenant_key(org), cmd, r, [r](event_page& page) {
            r->reply(json_response(200, event_page_json(page)));
          });
        });
      });

  routes.add("GET", "/api/v1/orgs/{org}/events/{event}",
             [self](request& req, const path_params& pp, responder_ptr r) {
               principal p;
               if (!self->authenticate(req, r, p))
                 return;
               auto eid = event_id::parse(pp[1]);
               self->with_org(p, pp[0], r, [self, p, eid, r](tenant_id org) {
                 if (!eid)
                   return fail(r, 404, "not_found", "event not found");
                 self->ask<event_record>(
                     tenant_key(org), get_event{p.who, *eid}, r,
                     [r](event_record& e) {
                       r->reply(json_response(200, event_json(e)));
                     });
               });
             });

  routes.add(
      "PATCH", "/api/v1/orgs/{org}/events/{event}",
      [self](request& req, const path_params& pp, responder_ptr r) {
        principal p;
        if (!self->authenticate_json(req, r, p))
          return;
        update_event cmd;
        cmd.who = p.who;
        if (auto err = json::decode_event_patch(req.body, cmd.patch,
                                                cmd.expected_version))
          return fail(r, err);
        auto eid = event_id::parse(pp[1]);
        self->with_org(p, pp[0], r, [self, cmd, eid, r](tenant_id org) mutable {
          if (!eid)
            return fail(r, 404, "not_found", "event not found");
          cmd.id = *eid;
          self->ask<event_record>(tenant_key(org), cmd, r,
                                  [r](event_record& e) {
                                    r->reply(json_response(200, event_json(e)));
                                  });
        });
      });

  routes.add(
      "DELETE", "/api/v1/orgs/{org}/events/{event}",
      [self](request& req, const path_params& pp, responder_ptr r) {
        principal p;
        if (!self->authenticate(req, r, p))
          return;
        query_params q;
        if (!self->read_query(req, r, q))
          return;
        delete_event cmd;
        cmd.who = p.who;
        if (auto v = find_param(q, "version")) {
          char* end = nullptr;
          errno = 0;
          auto n = std::strtoull(v->c_str(), &end, 10);
          // Digits only: strtoull alone would take " -1" and wrap it.
          if (v->empty() || v->size() > 20
              || v->find_first_not_of("0123456789") != std::string::npos
              || *end != '\0' || errno != 0 || n == 0)
            return fail(r, 400, "invalid_field",
                        "'version' must be a positive integer", "version");
          cmd.expected_version = n;
        }
        auto eid = event_id::parse(pp[1]);
        self->with_org(p, pp[0], r, [self, cmd, eid, r](tenant_id org) mutable {
          if (!eid)
            return fail(r, 404, "not_found", "event not found");
          cmd.id = *eid;
          self->ask<event_deleted>(tenant_key(org), cmd, r,
                                   [r](event_deleted&) {
                                     response res;
                                     res.status = 204;
                                     r->reply(std::move(res));
                                   });
        });
      });

  routes.add("POST", "/api/v1/orgs/{org}/events/import",
             [self](request& req, const path_params& pp, responder_ptr r) {
               principal p;
               if (!self->authenticate_json(req, r, p))
                 return;
               import_events cmd;
               cmd.who = p.who;
               if (auto err
                   = json::decode_import(req.body, cmd.owner, cmd.drafts,
                                         self->cfg.max_import_events))
                 return fail(r, err);
               self->with_org(p, pp[0], r, [self, cmd, r](tenant_id org) {
                 self->ask<events_imported>(
                     tenant_key(org), cmd, r, [r](events_imported& x) {
                       json::writer w;
                       w.begin_object().key("ids").begin_array();
                       for (auto& id : x.ids)
                         w.value(id.str());
                       w.end_array().end_object();
                       r->reply(json_response(201, w.take()));
                     });
               });
             });

  routes.add("POST", "/api/v1/orgs/{org}/events/mass-update",
             [self](request& req, const path_params& pp, responder_ptr r) {
               principal p;
               if (!self->authenticate_json(req, r, p))
                 return;
               mass_update cmd;
               cmd.who = p.who;
               if (auto err
                   = json::decode_mass_update(req.body, cmd.ids, cmd.patch,
                                              self->cfg.max_mass_update_ids))
                 return fail(r, err);
               self->with_org(p, pp[0], r, [self, cmd, r](tenant_id org) {
                 self->ask<events_updated>(
                     tenant_key(org), cmd, r, [r](events_updated& x) {
                       json::writer w;
                       w.begin_object().key("updated").value(
                           static_cast<uint64_t>(x.items.size()));
                       w.key("items").begin_array();
                       for (auto& e : x.items)
                         json::write_event(w, e);
                       w.end_array().end_object();
                       r->reply(json_response(200, w.take()));
                     });
               });
             });

  routes.add("GET", "/api/v1/orgs/{org}/users/{user}/calendar-sync",
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
                 // The tenant checks the caller and that the user exists;
                 // the calendar actor owns the sync state.
                 self->ask<user_record>(
                     tenant_key(org), get_user{p.who, *uid}, r,
                     [self, org, uid, r](user_record&) {
                       self->ask<calendar_status>(
                           entity_key{entity_kind::calendar, org, *uid},
                           status_request{}, r, [r](calendar_status& s) {
                             json::writer w;
                             json::write_calendar_status(w, s);
                             r->reply(json_response(200, w.take()));
                           });
                     });
               });
             });

  // -- admin API
  // ----------------------------------------------------------------------

  routes.add("GET", "/admin/v1/status",
             [self](request& req, const path_params&, responder_ptr r) {
               if (self->admin_auth(req, r))
                 self->admin_status(r);
             });
  routes.add("GET", "/admin/v1/cluster",
             [self](request& req, const path_params&, responder_ptr r) {
               if (self->admin_auth(req, r))
                 self->admin_cluster(r, false);
             });
  routes.add("POST", "/admin/v1/shards/{shard}/move",
             [self](request& req, const path_params& pp, responder_ptr r) {
               if (!self->admin_auth(req, r) || !self->require_json(req, r))
                 return;
               std::string to;
               if (auto err = json::decode_shard_move(req.body, to))
                 return fail(r, err);
               uint32_t shard = 0;
               try {
                 size_t used = 0;
                 auto n = std::stoul(pp[0], &used);
                 if (used != pp[0].size() || n > UINT32_MAX)
                   throw std::invalid_argument("shard");
                 shard = static_cast<uint32_t>(n);
               } catch (...) {
                 return fail(r, 404, "not_found", "no such shard");
               }
               if (!self->cluster.move_shard)
                 return fail(r, 409, "not_clustered",
                             "this node is not part of a cluster: shards do "
                             "not move");
               self->cluster.move_shard(
                   shard, to, [r](caf::expected<std::string> moved) {
                     if (!moved)
                       return fail(r, moved.error());
                     r->reply(json_response(200, std::move(*moved)));
                   });
             });
  routes.add("GET", "/admin/v1/shards",
             [self](request& req, const path_params&, responder_ptr r) {
               if (self->admin_auth(req, r))
                 self->admin_cluster(r, true);
             });
  routes.add("GET", "/admin/v1/actors",
             [self](request& req, const path_params&, responder_ptr r) {
               if (self->admin_auth(req, r))
                 self->admin_actors(r);
             });
  routes.add("GET", "/admin/v1/tenants",
             [self](request& req, const path_params&, responder_ptr r) {
               if (self->admin_auth(req, r))
                 self->admin_tenants(req, r);
             });
  routes.add("GET", "/admin/v1/tenants/{id}",
             [self](request& req, const path_params& pp, responder_ptr r) {
               if (self->admin_auth(req, r))
                 self->admin_tenant(pp[0], r);
             });
  routes.add("GET", "/admin/v1/users/{id}",
             [self](request& req, const path_params& pp, responder_ptr r) {
               if (self->admin_auth(req, r))
                 self->admin_user(pp[0], r);
             });
  routes.add("GET", "/admin/v1/users/{id}/events",
             [self](request& req, const path_params& pp, responder_ptr r) {
               if (self->admin_auth(req, r))
                 self->admin_user_events(req, pp[0], r);
             });
  // crmsyncctl's console: actor introspection, passivation, resync.
  routes.add("GET", "/admin/v1/actors/{kind}/{id}",
             [self](request& req, const path_params& pp, responder_ptr r) {
               if (self->admin_auth(req, r))
                 admin_actor(self, pp[0], pp[1], r);
             });
  routes.add("POST", "/admin/v1/actors/{kind}/{id}/passivate",
             [self](request& req, const path_params& pp, responder_ptr r) {
               if (self->admin_auth(req, r))
                 admin_passivate(self, pp[0], pp[1], r);
             });
  routes.add("POST", "/admin/v1/users/{id}/resync",
             [self](request& req, const path_params& pp, responder_ptr r) {
               if (self->admin_auth(req, r))
                 admin_resync(self, pp[0], r);
             });
}

// -- admin
// -----------------------------------------------------------------------------

bool api::impl::admin_auth(const request& req, const responder_ptr& r) {
  principal p;
  if (!authenticate(req, r, p))
    return false;
  if (!p.who.service_admin) {
    refuse_user(p, r, "the admin API needs the service admin token");
    return false;
  }
  return true;
}

namespace {

void write_kind_stats(json::writer& w, const kind_stats& k) {
  w.key("live").value(k.live);
  w.key("activations").value(k.activations);
  w.key("passivations").value(k.passivations);
}

} // namespace

void api::impl::admin_status(responder_ptr r) {
  auto self = shared_from_this();
  with_directory_stats(r, [r, self](directory_stats& ds) {
    auto now = system_now_ms();
    auto st = self->db.stats();
    json::writer w;
    w.begin_object();
    w.key("node_id").value(self->info.node_id);
    w.key("version").value(self->info.version);
    w.key("started_at").value(format_rfc3339(self->info.started_ms));
    w.key("uptime_s").value((now - self->info.started_ms) / 1000);
    w.key("listen").value(self->info.listen);
    w.key("data_dir").value(self->info.data_dir);
    w.key("ready").value(self->ready.load());
    w.key("storage").begin_object();
    w.key("estimate_keys").value(st.estimate_keys);
    w.key("live_sst_bytes").value(st.live_sst_bytes);
    w.key("memtable_bytes").value(st.memtable_bytes);
    w.end_object();
    w.key("http").begin_object();
    server_stats ss;
    if (self->server_stats_fn)
      ss = self->server_stats_fn();
    w.key("requests").value(ss.requests);
    w.key("in_flight").value(ss.in_flight);
    w.key("connections").value(ss.connections);
    w.key("connections_refused").value(ss.refused);
    w.key("header_timeouts").value(ss.header_timeouts);
    w.end_object();
    w.key("actors").begin_object();
    for (auto& k : ds.kinds) {
      w.key(to_string(k.kind)).begin_object();
      write_kind_stats(w, k);
      w.end_object();
    }
    w.end_object();
    w.end_object();
    r->reply(json_response(200, w.take()));
  });
}

void api::impl::admin_actors(responder_ptr r) {
  with_directory_stats(r, [r](directory_stats& ds) {
    json::writer w;
    w.begin_object();
    w.key("idle_timeout_ms").value(ds.idle_timeout_ms);
    w.key("kinds").begin_array();
    for (auto& k : ds.kinds) {
      w.begin_object();
      w.key("kind").value(to_string(k.kind));
      write_kind_stats(w, k);
      w.end_object();
    }
    w.end_array();
    w.key("items").begin_array();
    for (auto& la : ds.live) {
      w.begin_object();
      w.key("kind").value(to_string(la.key.kind));
      w.key("id").value(la.key.kind == entity_kind::tenant ? la.key.tenant.str()
                                                           : la.key.user.str());
      w.key("tenant").value(la.key.tenant.str());
      w.key("idle_ms").value(la.idle_ms);
      w.key("messages").value(la.messages);
      w.key("stopping").value(la.stopping);
      w.end_object();
    }
    w.end_array();
    w.end_object();
    r->reply(json_response(200, w.take()));
  });
}

void api::impl::admin_tenants(const request& req, responder_ptr r) {
  query_params q;
  uint32_t limit = 100;
  if (!read_query(req, r, q) || !read_limit(q, r, limit))
    return;
  std::string begin;
  if (auto c = find_param(q, "cursor")) {
    auto after = tenant_id::parse(*c);
    if (!after)
      return fail(r, 400, "invalid_field",
                  "'cursor' is not a cursor from this listing", "cursor");
    begin = keys::org(*after) + '\0';
  }
  json::writer w;
  w.begin_object().key("items").begin_array();
  size_t n = 0;
  std::string next;
  std::string last;
  bool corrupt = false;
  auto err = db.scan(column::orgs, begin, {},
                     [&](std::string_view k, std::string_view v) {
                       if (k.size() != 8)
                         return true; // a closed marker (keys::org_closed)
                       org_record o;
                       if (!codec::decode(v, o)) {
                         corrupt = true;
                         return false;
                       }
                       if (n == limit) {
                         next = last;
                         return false;
                       }
                       w.begin_object();
                       w.key("id").value(o.id.str());
                       w.key("name").value(o.name);
                       w.key("edition").value(to_string(o.plan));
                       w.key("users").value(o.user_count);
                       w.key("events").value(o.event_count);
                       w.key("created_at").value(format_rfc3339(o.created_ms));
                       w.end_object();
                       last = o.id.str();
                       ++n;
                       return true;
                     });
  if (err)
    return fail(r, err);
  if (corrupt)
    return fail(r, 500, "storage_failure",
                "a stored organization could not be read");
  w.end_array().key("next_cursor").value_or_null(next);
  w.end_object();
  r->reply(json_response(200, w.take()));
}

namespace {

bool directory_has(const directory_stats& ds, const entity_key& key) {
  for (auto& la : ds.live)
    if (la.key == key)
      return true;
  return false;
}

} // namespace

void api::impl::admin_tenant(const std::string& id, responder_ptr r) {
  auto org = tenant_id::parse(id);
  if (!org)
    return fail(r, 404, "not_found", "organization not found");
  std::string value;
  bool found = false;
  if (auto err = db.get(column::orgs, keys::org(*org), value, found))
    return fail(r, err);
  org_record o;
  if (!found)
    return fail(r, 404, "not_found", "organization not found");
  if (!codec::decode(value, o))
    return fail(r, 500, "storage_failure",
                "the stored organization could not be read");
  std::optional<std::pair<uint32_t, std::string>> where;
  if (cluster.placement)
    where = cluster.placement(o.id);
  with_directory_stats(r, [r, o, where](directory_stats& ds) {
    json::writer w;
    w.begin_object().key("org");
    json::write_org(w, o);
    w.key("users").value(o.user_count);
    w.key("events").value(o.event_count);
    w.key("active").value(
        directory_has(ds, entity_key{entity_kind::tenant, o.id, user_id{}}));
    if (where) {
      w.key("shard").value(static_cast<uint64_t>(where->first));
      w.key("node").value(where->second);
    }
    w.end_object();
    r->reply(json_response(200, w.take()));
  });
}

void api::impl::admin_cluster(const responder_ptr& r, bool shards) {
  const auto& body = shards ? cluster.shards : cluster.describe;
  if (!body)
    return fail(r, 503, "not_ready", "the cluster view is not ready yet");
  r->reply(json_response(200, body()));
}

bool api::impl::found_global(storage::column c, const std::string& key,
                             std::string& value, caf::error& err) {
  switch (read_global(c, key, value)) {
    case cluster_hooks::read_outcome::found:
      return true;
    case cluster_hooks::read_outcome::missing:
      return false;
    default:
      err = make_crm_error(crm_errc::unavailable, "node_unavailable",
                           "a node that may hold this is unreachable; retry");
      return false;
  }
}

bool api::impl::lookup_user(const std::string& id_or_email, tenant_id& org,
                            user_id& user, caf::error& err) {
  std::string value;
  if (id_or_email.find('@') != std::string::npos) {
    std::string email;
    if (!json::normalize_email(id_or_email, email))
      return false;
    if (!found_global(column::lookup, keys::email_lookup(email), value, err)
        || value.size() != 16)
      return false;
    org = tenant_id{keys::get_be64(value, 0)};
    user = user_id{keys::get_be64(value, 8)};
    return true;
  }
  auto uid = user_id::parse(id_or_email);
  if (!uid)
    return false;
  if (!found_global(column::lookup, keys::user_lookup(*uid), value, err)
      || value.size() != 8)
    return false;
  org = tenant_id{keys::get_be64(value, 0)};
  user = *uid;
  return true;
}

void api::impl::admin_user(const std::string& id, responder_ptr r) {
  tenant_id org;
  user_id uid;
  caf::error err;
  if (!lookup_user(id, org, uid, err))
    return err ? fail(r, err) : fail(r, 404, "not_found", "user not found");
  std::string value;
  bool found = false;
  user_record u;
  org_record o;
  if ((err = db.get(column::users, keys::user(org, uid), value, found)))
    return fail(r, err);
  if (!found)
    return fail(r, 404, "not_found", "user not found");
  if (!codec::decode(value, u))
    return fail(r, 500, "storage_failure", "the stored user could not be read");
  if ((err = db.get(column::orgs, keys::org(org), value, found)))
    return fail(r, err);
  if (!found || !codec::decode(value, o))
    return fail(r, 500, "storage_failure",
                "the user's organization could not be read");
  calendar_status cal;
  if ((err
       = db.get(column::sync, keys::sync_state(org, uid, entity_kind::calendar),
                value, found)))
    return fail(r, err);
  if (found)
    codec::decode(value, cal);
  with_directory_stats(r, [r, u, o, cal](directory_stats& ds) {
    json::writer w;
    w.begin_object().key("user");
    json::write_user(w, u);
    w.key("org").begin_object();
    w.key("id").value(o.id.str());
    w.key("name").value(o.name);
    w.key("edition").value(to_string(o.plan));
    w.end_object();
    w.key("mailbox").begin_object();
    w.key("active").value(
        directory_has(ds, entity_key{entity_kind::mailbox, u.org, u.id}));
    w.key("office365_linked").value(!u.o365_user.empty());
    w.end_object();
    w.key("calendar").begin_object();
    w.key("active").value(
        directory_has(ds, entity_key{entity_kind::calendar, u.org, u.id}));
    w.key("state").value(to_string(cal.state));
    w.end_object();
    w.end_object();
    r->reply(json_response(200, w.take()));
  });
}

void api::impl::admin_user_events(const request& req, const std::string& id,
                                  responder_ptr r) {
  tenant_id org;
  user_id uid;
  caf::error err;
  if (!lookup_user(id, org, uid, err))
    return err ? fail(r, err) : fail(r, 404, "not_found", "user not found");
  query_params q;
  list_events cmd;
  cmd.who.service_admin = true;
  cmd.owner = uid;
  cmd.from_ms = std::numeric_limits<int64_t>::min();
  cmd.to_ms = std::numeric_limits<int64_t>::max();
  if (!read_query(req, r, q) || !read_limit(q, r, cmd.limit)
      || !read_time_param(q, "from", r, cmd.from_ms)
      || !read_time_param(q, "to", r, cmd.to_ms))
    return;
  if (auto c = find_param(q, "cursor"))
    cmd.cursor = *c;
  ask<event_page>(tenant_key(org), cmd, r, [r](event_page& page) {
    r->reply(json_response(200, event_page_json(page)));
  });
}

// -- public
// ------------------------------------------------------------------------------

api::api(caf::actor_system& sys, caf::actor directory, storage::db& db,
         fair_pool& hashing, api_config cfg, node_info info)
    : impl_(std::make_shared<impl>(sys, std::move(directory), db, hashing,
                                   std::move(cfg), std::move(info))) {
  impl_->install_routes();
  impl_->install_office365_routes();
  impl_->install_user_routes();
  impl_->install_password_setup_routes();
  impl_->install_org_data_routes();
  impl_->install_backup_routes();
  impl_->install_web_routes();
  impl_->install_openapi_routes();
  impl_->install_memory_routes();
  impl_->install_doctor_routes();
  impl_->install_history_routes();
  impl_->install_cluster_admin_routes();
}

std::vector<router::entry> api::route_table() const {
  auto out = impl_->routes.table();
  for (auto& m : impl_->metrics_routes.table()) {
    bool known = false;
    for (auto& e : out)
      known = known || (e.method == m.method && e.pattern == m.pattern);
    if (!known)
      out.push_back(m);
  }
  return out;
}

void api::set_server_stats(std::function<server_stats()> f) {
  impl_->server_stats_fn = std::move(f);
}

void api::set_office365(office365_options o) {
  impl_->o365 = std::move(o);
}

void api::set_ready(bool ready) {
  impl_->ready = ready;
}

void api::stop_background() {
  impl_->stop_jobs();
}

void api::stop_actors() {
  impl_->stop_actors();
}

api::~api() {
  if (impl_) {
    impl_->stop_jobs();
    impl_->stop_actors();
  }
}

response error_response(const api_error& e) {
  response r;
  r.status = e.status;
  r.body = json::encode_error(e);
  if (e.status == 503)
    r.headers.emplace_back("Retry-After", "1");
  if (e.status == 401)
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

response too_many_notifications(size_t max) {
  return error_response(api_error{413, "too_many_notifications",
                                  "a notification POST may carry at most "
                                      + std::to_string(max) + " notifications",
                                  ""});
}

void api::set_cluster(cluster_hooks hooks) {
  impl_->cluster = std::move(hooks);
}

cluster_hooks::read_outcome api::read_local(storage::column c,
                                            const std::string& key,
                                            std::string& value, bool take) {
  return impl_->read_local(c, key, value, take);
}

cluster_hooks::read_outcome api::impl::read_local(storage::column c,
                                                  const std::string& key,
                                                  std::string& value,
                                                  bool take) {
  using outcome = cluster_hooks::read_outcome;
  std::unique_lock<std::mutex> guard{states_mtx, std::defer_lock};
  if (take)
    guard.lock();
  bool found = false;
  if (auto err = db.get(c, key, value, found)) {
    log::error("storage: read failed: " + sys.render(err));
    return outcome::unavailable;
  }
  if (!found)
    return outcome::missing;
  if (cluster.copy_only && cluster.copy_only(c, key, value)) {
    value.clear();
    return outcome::missing;
  }
  if (take) {
    storage::write_batch b;
    b.del(c, key);
    if (db.write(b))
      return outcome::unavailable;
  }
  return outcome::found;
}

namespace {

thread_local const fetched_scope* innermost_fetched = nullptr;

} // namespace

fetched_scope::fetched_scope(const fetched_reads& reads)
    : reads_(reads), outer_(innermost_fetched) {
  innermost_fetched = this;
}

fetched_scope::~fetched_scope() {
  innermost_fetched = outer_;
}

const cluster_hooks::read_answer* fetched_scope::find(storage::column c,
                                                      const std::string& key) {
  for (auto* s = innermost_fetched; s != nullptr; s = s->outer_) {
    auto i = s->reads_.find({c, key});
    if (i != s->reads_.end())
      return &i->second;
  }
  return nullptr;
}

bool fetched_scope::open() {
  return innermost_fetched != nullptr;
}

cluster_hooks::read_outcome api::impl::read_global(storage::column c,
                                                   const std::string& key,
                                                   std::string& value,
                                                   bool take) {
  if (!take)
    if (auto* f = fetched_scope::find(c, key)) {
      value = f->value;
      return f->outcome;
    }
  auto here = read_local(c, key, value, take);
  if (here != cluster_hooks::read_outcome::missing || !cluster.read)
    return here;
  if (fetched_scope::open())
    log::warn("a global read was not fetched ahead of its continuation; it "
              "waits on the cluster");
  return cluster.read(c, key, value, take);
}

void api::impl::read_global_async(storage::column c,
                                  std::vector<std::string> keys, bool take,
                                  cluster_hooks::read_done done) {
  std::vector<cluster_hooks::read_answer> out(keys.size());
  std::vector<std::string> ask;
  std::vector<size_t> where;
  for (size_t i = 0; i < keys.size(); ++i) {
    out[i].outcome = read_local(c, keys[i], out[i].value, take);
    if (out[i].outcome == cluster_hooks::read_outcome::missing
        && cluster.read_async) {
      ask.push_back(std::move(keys[i]));
      where.push_back(i);
    }
  }
  if (ask.empty())
    return done(std::move(out));
  cluster.read_async(c, std::move(ask), take,
                     [out = std::move(out), where = std::move(where), done](
                         std::vector<cluster_hooks::read_answer> got) mutable {
                       for (size_t j = 0; j < where.size() && j < got.size();
                            ++j)
                         out[where[j]] = std::move(got[j]);
                       done(std::move(out));
                     });
}

void api::handle(request&& req, responder_ptr r) {
  impl_->dispatch(impl_->routes, std::move(req), std::move(r));
}

void api::handle_metrics(request&& req, responder_ptr r) {
  impl_->dispatch(impl_->metrics_routes, std::move(req), std::move(r));
}

namespace {

/// What a request's log lines say of it: its id, and the organization and
/// user its path names (as sent: a path is the client's, so a long one is
/// left out).
log::context request_context(const request& req, const std::string* pattern,
                             const path_params& params) {
  log::context ctx;
  ctx.request_id = req.request_id;
  if (pattern == nullptr)
    return ctx;
  std::vector<std::string_view> segments;
  split_route_path(*pattern, segments);
  size_t captured = 0;
  for (auto seg : segments) {
    if (seg.empty() || seg.front() != '{')
      continue;
    if (captured >= params.size())
      break;
    const auto& value = params[captured++];
    if (value.size() > 64)
      continue;
    if (seg == "{org}")
      ctx.org = value;
    else if (seg == "{user}" && value != "me")
      ctx.user = value;
  }
  return ctx;
}

} // namespace

void api::impl::dispatch(const router& table, request&& req, responder_ptr r) {
  const route_handler* h = nullptr;
  path_params params;
  std::string allow;
  const auto& method = req.method;
  const std::string* pattern = nullptr;
  auto found = table.match(req, h, params, allow, pattern);
  // Every line this request causes carries its id (and the organization
  // and user its path names): the access line, what the handler logs on
  // this thread, and through the caller the tenant actor's lines and
  // audit entries.
  auto ctx = request_context(req, pattern, params);
  log::scope in{ctx};
  r = metered(std::move(r), method, pattern, ctx);
  switch (found) {
    case router::outcome::matched:
      (*h)(req, params, std::move(r));
      return;
    case router::outcome::wrong_method: {
      auto res = error_response(api_error{
          405, "method_not_allowed",
          "method " + method + " is not allowed here; use " + allow, ""});
      res.headers.emplace_back("Allow", allow);
      r->reply(std::move(res));
      return;
    }
    default:
      fail(r, 404, "not_found", "no such route: " + req.path);
  }
}

} // namespace crmsync::http
