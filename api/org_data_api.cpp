// An organization's data as a whole (t14-data): disconnecting it from
// Office 365 (its administrator), exporting it as JSON lines and deleting
// it with every row (the service admin), and the node's own audit log,
// which keeps who deleted what outside the deleted range.
//
// The export is streamed (http::response::stream): a page of rows is read
// from storage only when the previous one was sent, on the connection's I/O
// thread. A deletion waits for the sync teardown and removes rows on a
// thread of its own, then answers.
#include "api/api_impl.hpp"

#include <map>
#include <thread>

#include <caf/send.hpp>

#include "api/records_json.hpp"
#include "api/sessions.hpp"
#include "common/log.hpp"
#include "graph/client.hpp"
#include "protocol/permissions.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "storage/org_rows.hpp"
#include "storage/teardown_rows.hpp"

namespace crmsync::http {

namespace {

namespace keys = storage::keys;
namespace codec = storage::codec;
using storage::column;

/// The node's own audit entries (who deleted an organization) live under
/// this organization id, which no organization has.
constexpr tenant_id node_audit_org{0};

/// How long a deletion waits for the users' calendars to leave Office 365
/// before it removes the rows anyway (and says so).
constexpr auto teardown_wait = std::chrono::seconds(30);

/// Rows read (export) or deleted per step.
constexpr size_t rows_per_step = 500;

/// The families an export shows: the records, not the indexes, queues and
/// timers derived from them (lookups, event index, mail and sync queues,
/// reminders; queued mail also holds invitation links).
std::vector<column> exported_columns() {
  return {column::orgs,    column::users, column::events,
          column::invites, column::joins, column::audit,
          column::sync,    column::links, column::conflicts};
}

/// One row as one JSON line ("" for a row an export leaves out), by the
/// family's record type; a row that does not decode is named, not hidden.
std::string export_line(column c, std::string_view k, std::string_view v) {
  json::writer w;
  w.begin_object();
  auto record = [&](const char* kind) -> json::writer& {
    w.key("kind").value(kind);
    return w.key("record");
  };
  auto unreadable = [&] {
    w = json::writer{};
    w.begin_object();
    w.key("kind").value("unreadable");
    w.key("family").value(storage::column_name(c));
  };
  // The value as a `Record` written by `write` under `kind`, or the row
  // marked unreadable.
  auto emit = [&](auto record_tag, const char* kind, auto write) {
    decltype(record_tag) x;
    if (!codec::decode(v, x))
      return unreadable();
    write(record(kind), x);
  };
  switch (c) {
    case column::orgs: {
      if (k.size() != 8)
        return {}; // the closed marker
      emit(org_record{}, "organization", json::write_org);
      break;
    }
    case column::users: {
      emit(user_record{}, "user", json::write_user);
      break;
    }
    case column::events: {
      emit(event_record{}, "event", json::write_event);
      break;
    }
    case column::invites: {
      emit(invite_record{}, "invite", write_invite);
      break;
    }
    case column::joins: {
      emit(join_request_record{}, "join_request", write_join_request);
      break;
    }
    case column::audit: {
      emit(audit_entry{}, "audit", write_audit_entry);
      break;
    }
    case column::sync: {
      // Only the calendar's status (no client state, no tokens).
      if (k.size() != 17 || k[16] != static_cast<char>(entity_kind::calendar))
        return {};
      emit(calendar_status{}, "calendar_sync", json::write_calendar_status);
      break;
    }
    case column::links: {
      sync_link x;
      if (k.size() < 16 || !codec::decode(v, x)) {
        unreadable();
        break;
      }
      record("sync_link")
          .begin_object()
          .key("user")
          .value(user_id{keys::get_be64(k, 8)}.str())
          .key("event")
          .value(x.event.str())
          .key("office365_event_id")
          .value(x.graph_id)
          .end_object();
      break;
    }
    case column::conflicts: {
      sync_conflict x;
      if (!codec::decode(v, x)) {
        unreadable();
        break;
      }
      record("conflict")
          .begin_object()
          .key("user")
          .value(x.user.str())
          .key("event")
          .value(x.event.str())
          .key("at")
          .value(format_rfc3339_ms(x.at_ms))
          .key("policy")
          .value(x.policy)
          .key("winner")
          .value(x.winner)
          .key("kept")
          .value(x.kept)
          .key("lost")
          .value(x.lost)
          .end_object();
      break;
    }
    default:
      return {};
  }
  w.end_object();
  auto line = w.take();
  line += '\n';
  return line;
}

/// The stored organization `org` and whether it is closed; false after
/// answering 404 (or the storage error).
bool read_org(storage::db& db, tenant_id org, org_record& out, bool& closed,
              const responder_ptr& r) {
  std::string v;
  bool found = false;
  if (auto err = db.get(column::orgs, keys::org(org), v, found)) {
    fail(r, err);
    return false;
  }
  if (!found) {
    fail(r, 404, "not_found", "organization not found");
    return false;
  }
  if (!codec::decode(v, out)) {
    fail(r, 500, "storage_failure",
         "the stored organization could not be read");
    return false;
  }
  if (auto err = db.get(column::orgs, keys::org_closed(org), v, closed)) {
    fail(r, err);
    return false;
  }
  return true;
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Users of `org` whose Office 365 teardown is still pending.
size_t pending_teardowns(const storage::db& db, tenant_id org) {
  size_t n = 0;
  auto prefix = keys::org(org);
  db.scan(column::sync, prefix, keys::prefix_end(prefix),
          [&](std::string_view k, std::string_view) {
            if (storage::teardown_rows::is_teardown_key(k))
              ++n;
            return true;
          });
  return n;
}

/// Whether a `sessions` row is a browser's page session of `org` (keyed
/// 'w' + the cookie's hash; api/sessions.hpp).
bool page_session_of(std::string_view k, std::string_view v, tenant_id org) {
  pages::session s;
  return !k.empty() && k[0] == 'w' && pages::decode(v, s) && s.org == org;
}

/// Removes the page sessions that name `org` (the deleted organization's
/// people must not stay signed in to its pages); answers how many.
caf::expected<uint64_t> remove_page_sessions(storage::db& db, tenant_id org) {
  storage::write_batch b;
  std::string begin{"w"};
  if (auto err = db.scan(column::sessions, begin, keys::prefix_end(begin),
                         [&](std::string_view k, std::string_view v) {
                           if (page_session_of(k, v, org))
                             b.del(column::sessions, std::string{k});
                           return true;
                         }))
    return err;
  uint64_t n = b.size();
  if (n > 0)
    if (auto err = db.write(b))
      return err;
  return n;
}

std::string describe(const org_record& o) {
  return "organization '" + o.name + "' (" + o.id.str() + ")";
}

} // namespace

void put_node_audit(storage::write_batch& b, int64_t now, std::string action,
                    std::string detail) {
  audit_entry a;
  a.org = node_audit_org;
  a.at_ms = now;
  a.seq = crypto::random_u64();
  a.actor = "service-admin";
  a.action = std::move(action);
  a.detail = std::move(detail);
  b.put(column::audit, keys::audit(a.org, a.at_ms, a.seq), codec::encode(a));
}

/// The rest of a deletion once the organization is closed: the wait for
/// the sync teardown, the rows, the node's audit entry. Blocks; runs on a
/// thread of its own.
void api::impl::finish_delete(org_record o, responder_ptr r) {
  auto deadline = std::chrono::steady_clock::now() + teardown_wait;
  size_t pending = 0;
  auto stopped = [&] {
    if (!stopping_jobs)
      return false;
    fail(r, 503, "shutting_down",
         "the node is stopping; the organization stays closed: delete it "
         "again");
    return true;
  };
  while ((pending = pending_teardowns(db, o.id)) > 0
         && std::chrono::steady_clock::now() < deadline) {
    if (stopped())
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (stopped())
    return;
  // The organization's actors go (the tenant already answers "not found");
  // a calendar with a run in progress refuses and ends on its own.
  caf::anon_send(directory, passivate_atom_v, tenant_key(o.id));
  // Every row, the organization's record and its closed marker last: a
  // deletion cut short leaves a closed organization to delete again.
  storage::org_row_cursor rows{db, {o.id.value}, storage::org_columns()};
  auto record = keys::org(o.id);
  auto marker = keys::org_closed(o.id);
  uint64_t removed = 0;
  bool done = false;
  while (!done) {
    if (stopped())
      return;
    storage::write_batch b;
    std::vector<entity_key> calendars;
    auto err = rows.next(
        rows_per_step,
        [&](column c, std::string_view k, std::string_view) {
          if (c == column::orgs && (k == record || k == marker))
            return;
          if (c == column::users && k.size() == 16)
            for (auto kind : {entity_kind::calendar, entity_kind::mailbox})
              calendars.push_back(
                  entity_key{kind, o.id, user_id{keys::get_be64(k, 8)}});
          b.del(c, std::string{k});
        },
        done);
    for (auto& key : calendars)
      caf::anon_send(directory, passivate_atom_v, key);
    if (!err)
      err = db.write(b);
    if (err) {
      log::error("delete " + o.id.str() + ": " + sys.render(err));
      return fail(r, 500, "storage_failure",
                  "removing the organization's rows failed after "
                      + std::to_string(removed)
                      + " rows; the organization stays closed: delete it "
                        "again");
    }
    removed += b.size();
  }
  auto sessions = remove_page_sessions(db, o.id);
  if (!sessions) {
    log::error("delete " + o.id.str() + ": " + sys.render(sessions.error()));
    return fail(r, 500, "storage_failure",
                "removing the organization's page sessions failed; the "
                "organization stays closed: delete it again");
  }
  removed += *sessions;
  storage::write_batch last;
  last.del(column::orgs, record);
  last.del(column::orgs, marker);
  removed += 1;
  put_node_audit(last, wall_ms(), "org.deleted",
                 describe(o) + " deleted: " + std::to_string(removed)
                     + " rows removed"
                     + (pending > 0 ? "; " + std::to_string(pending)
                                          + " users' CRM calendars could not "
                                            "be removed from Office 365"
                                    : std::string{}));
  if (auto err = db.write(last))
    return fail(r, err);
  // One last sweep: rows a calendar run or the mailer wrote late (after
  // the walk passed their family) go too.
  storage::org_row_cursor late{db, {o.id.value}, storage::org_columns()};
  storage::write_batch swept;
  if (auto err = late.all([&](column c, std::string_view k, std::string_view) {
        swept.del(c, std::string{k});
      });
      err || (swept.size() > 0 && db.write(swept)))
    log::error("delete " + o.id.str() + ": the last sweep of late rows failed");
  else if (swept.size() > 0)
    log::info("delete " + o.id.str() + ": " + std::to_string(swept.size())
              + " rows written late removed");
  forget_o365_tenant(o.o365_tenant);
  log::info("delete: " + describe(o) + ", " + std::to_string(removed)
            + " rows");
  json::writer w;
  w.begin_object();
  w.key("status").value("deleted");
  w.key("org_id").value(o.id.str());
  w.key("name").value(o.name);
  w.key("rows").value(removed);
  w.key("office365_teardown").value(pending == 0 ? "complete" : "incomplete");
  w.key("office365_calendars_left").value(static_cast<uint64_t>(pending));
  w.end_object();
  r->reply(json_response(200, w.take()));
}

void api::impl::forget_o365_tenant(const std::string& tenant) {
  // This node's cache; the calendars' teardowns forget it where they ran.
  if (!tenant.empty() && o365.graph != nullptr)
    o365.graph->forget_token(tenant);
}

bool api::impl::spawn_job(std::function<void()> job) {
  std::lock_guard<std::mutex> guard{jobs_mtx};
  if (stopping_jobs)
    return false;
  ++job_threads;
  auto s = shared_from_this();
  std::thread{[s, job = std::move(job)]() mutable {
    job();
    job = nullptr; // what it holds (a responder) goes before the count
    std::lock_guard<std::mutex> guard{s->jobs_mtx};
    --s->job_threads;
    s->jobs_done.notify_all();
  }}.detach();
  return true;
}

void api::impl::spawn_delete(org_record o, responder_ptr r) {
  auto s = shared_from_this();
  if (spawn_job([s, o, r]() mutable {
        s->finish_delete(o, r);
        r.reset();
        s->release_delete(o.id);
      }))
    return;
  release_delete(o.id);
  fail(r, 503, "shutting_down",
       "the node is stopping; the organization stays closed: delete it again");
}

void api::impl::stop_jobs() {
  std::unique_lock<std::mutex> guard{jobs_mtx};
  stopping_jobs = true;
  jobs_done.wait(guard, [this] { return job_threads == 0; });
}

bool api::impl::claim_delete(tenant_id org) {
  std::lock_guard<std::mutex> guard{deletes_mtx};
  return deleting.insert(org.value).second;
}

void api::impl::release_delete(tenant_id org) {
  std::lock_guard<std::mutex> guard{deletes_mtx};
  deleting.erase(org.value);
}

/// Answers the organization's records as streamed JSON lines.
void api::impl::export_org(tenant_id org, responder_ptr r) {
  org_record o;
  bool closed = false;
  if (!read_org(db, org, o, closed, r))
    return;
  if (closed)
    return fail(r, 404, "not_found", "organization not found");
  struct progress {
    storage::org_row_cursor rows;
    bool started = false;
    bool done = false;
    uint64_t records = 0;
  };
  auto s = shared_from_this();
  auto state = std::make_shared<progress>(
      progress{{s->db, {org.value}, exported_columns()}});
  response res;
  res.content_type = "application/x-ndjson; charset=utf-8";
  res.headers.emplace_back("Content-Disposition", "attachment; filename=\"org-"
                                                      + org.str() + ".jsonl\"");
  res.stream = [s, state, org](std::string& out) {
    if (!state->started) {
      state->started = true;
      json::writer w;
      w.begin_object();
      w.key("kind").value("export");
      w.key("org_id").value(org.str());
      w.key("format").value(1);
      w.key("at").value(format_rfc3339_ms(wall_ms()));
      w.end_object();
      out += w.take();
      out += '\n';
      return stream_step::more;
    }
    if (state->done) {
      json::writer w;
      w.begin_object();
      w.key("kind").value("end");
      w.key("records").value(state->records);
      w.end_object();
      out += w.take();
      out += '\n';
      return stream_step::last;
    }
    auto err = state->rows.next(
        rows_per_step,
        [&](column c, std::string_view k, std::string_view v) {
          auto line = export_line(c, k, v);
          if (!line.empty()) {
            out += line;
            ++state->records;
          }
        },
        state->done);
    if (err) {
      log::error("export " + org.str() + ": " + s->sys.render(err));
      return stream_step::failed;
    }
    return stream_step::more;
  };
  r->reply(std::move(res));
}

void api::impl::install_org_data_routes() {
  auto self = this; // routes live as long as the impl that owns them

  routes.add(
      "POST", "/api/v1/orgs/{org}/office365/disconnect",
      [self](request& req, const path_params& pp, responder_ptr r) {
        principal p;
        if (!self->authenticate(req, r, p))
          return;
        self->with_org(p, pp[0], r, [self, p, r](tenant_id org) {
          // The tenant it was linked to, for forgetting its app
          // token once the link is gone.
          self->ask<org_record>(
              tenant_key(org), get_org{p.who}, r,
              [self, p, r, org](org_record& before) {
                self->ask<org_record>(
                    tenant_key(org), disconnect_office365{p.who}, r,
                    [self, r, tenant = before.o365_tenant](org_record& o) {
                      self->forget_o365_tenant(tenant);
                      json::writer w;
                      w.begin_object();
                      w.key("status").value("disconnected");
                      w.key("organization");
                      json::write_org(w, o);
                      w.end_object();
                      r->reply(json_response(200, w.take()));
                    });
              });
        });
      });

  routes.add("GET", "/admin/v1/orgs/{org}/export",
             [self](request& req, const path_params& pp, responder_ptr r) {
               if (!self->admin_auth(req, r))
                 return;
               auto org = tenant_id::parse(pp[0]);
               if (!org)
                 return fail(r, 404, "not_found", "organization not found");
               self->export_org(*org, r);
             });

  // The organization's administrators export it too: nothing in it is
  // more than they can read through the API, and no secret is in it.
  routes.add("GET", "/api/v1/orgs/{org}/export",
             [self](request& req, const path_params& pp, responder_ptr r) {
               principal p;
               if (!self->authenticate(req, r, p))
                 return;
               self->with_org(p, pp[0], r, [self, p, r](tenant_id org) {
                 if (p.who.service_admin)
                   return self->export_org(org, r);
                 self->ask<user_record>(
                     tenant_key(org), crmsync::authenticate{p.who}, r,
                     [self, org, r](user_record& u) {
                       if (!is_admin(&u))
                         return fail(r, 403, "forbidden",
                                     "exporting the organization needs an "
                                     "administrator");
                       self->export_org(org, r);
                     });
               });
             });

  routes.add(
      "DELETE", "/admin/v1/orgs/{org}",
      [self](request& req, const path_params& pp, responder_ptr r) {
        query_params q;
        if (!self->admin_auth(req, r) || !self->read_query(req, r, q))
          return;
        auto org = tenant_id::parse(pp[0]);
        if (!org)
          return fail(r, 404, "not_found", "organization not found");
        org_record o;
        bool closed = false;
        if (!read_org(self->db, *org, o, closed, r))
          return;
        auto confirm = find_param(q, "confirm");
        if (confirm == nullptr || confirm->empty())
          return fail(r, 400, "confirmation_required",
                      "deleting an organization removes all of its data: "
                      "repeat its name or id as ?confirm=",
                      "confirm");
        if (*confirm != o.name && *confirm != o.id.str())
          return fail(r, 400, "confirmation_mismatch",
                      "'confirm' must be the organization's name or id",
                      "confirm");
        if (!self->claim_delete(o.id))
          return fail(r, 409, "org_closing",
                      "this organization is already being deleted");
        auto s = self->shared_from_this();
        // Once the organization is closed: the node's audit entry, then the
        // rest on a thread of its own.
        auto go = [s, o, r] {
          storage::write_batch b;
          put_node_audit(b, wall_ms(), "org.delete",
                         "deleting " + describe(o) + " ("
                             + std::to_string(o.user_count) + " users, "
                             + std::to_string(o.event_count) + " events)");
          if (auto err = s->db.write(b)) {
            s->release_delete(o.id);
            return fail(r, err);
          }
          s->spawn_delete(o, r);
        };
        if (closed)
          return go(); // a deletion cut short: finish it
        caller who;
        who.service_admin = true;
        self->ask<org_record>(
            tenant_key(o.id), close_org{who}, [go](org_record&) { go(); },
            [s, o, r](const caf::error& err) {
              s->release_delete(o.id);
              fail(r, err);
            });
      });

  routes.add("GET", "/admin/v1/orgs/{org}/rows",
             [self](request& req, const path_params& pp, responder_ptr r) {
               if (!self->admin_auth(req, r))
                 return;
               auto org = tenant_id::parse(pp[0]);
               if (!org)
                 return fail(r, 404, "not_found", "organization not found");
               std::map<std::string, uint64_t> by_family;
               uint64_t total = 0;
               storage::org_row_cursor rows{
                   self->db, {org->value}, storage::org_columns()};
               if (auto err = rows.all(
                       [&](column c, std::string_view, std::string_view) {
                         ++by_family[storage::column_name(c)];
                         ++total;
                       }))
                 return fail(r, err);
               json::writer w;
               w.begin_object();
               w.key("org_id").value(org->str());
               w.key("rows").value(total);
               w.key("families").begin_object();
               for (auto& [name, n] : by_family)
                 w.key(name).value(n);
               w.end_object().end_object();
               r->reply(json_response(200, w.take()));
             });

  routes.add(
      "GET", "/admin/v1/audit",
      [self](request& req, const path_params&, responder_ptr r) {
        query_params q;
        uint32_t limit = 0;
        if (!self->admin_auth(req, r) || !self->read_query(req, r, q)
            || !self->read_limit(q, r, limit))
          return;
        std::vector<audit_entry> items;
        auto prefix = keys::org(node_audit_org);
        bool bad = false;
        if (auto err
            = self->db.scan(column::audit, prefix, keys::prefix_end(prefix),
                            [&](std::string_view, std::string_view v) {
                              audit_entry a;
                              if (!codec::decode(v, a))
                                bad = true;
                              else
                                items.push_back(std::move(a));
                              return !bad;
                            }))
          return fail(r, err);
        if (bad)
          return fail(r, 500, "storage_failure",
                      "a node audit entry could not be read");
        json::writer w;
        w.begin_object().key("items").begin_array();
        size_t n = 0;
        for (auto i = items.rbegin(); i != items.rend() && n < limit; ++i, ++n)
          write_audit_entry(w, *i);
        w.end_array().end_object();
        r->reply(json_response(200, w.take()));
      });
}

} // namespace crmsync::http
