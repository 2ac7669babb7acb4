// The run's frame: start, end, loading and saving, failures, refused events,
// links.
#include "sync/calendar/run.hpp"

namespace crmsync::sync::calendar {

void calendar_run::start(bool notified, bool full) {
  notified_ = notified;
  if (!load()) {
    log::error("sync " + org_.str() + "/" + user_.str()
               + ": cannot read its records; nothing done");
    failed_ = true;
    return end();
  }
  // Blocked the last time: this run tries again from where it was.
  calendar_state resumed;
  if (status_.state == calendar_state::error
      && from_string(status_.resume_state, resumed))
    status_.state = resumed;
  if (full) {
    status_.delta_link.clear();
    notified_ = true;
  }
  if (!request_.enabled) {
    if (status_.state != calendar_state::disabled)
      return disable(true, [this] { end(); });
    return end();
  }
  if (o365_tenant_.empty() || oid_.empty()) {
    fail("the user or organization is not linked to Office 365");
    return end();
  }
  // An approval stands until a run with it got through (a failure on
  // the way must not hold the user again).
  deletes_approved_ = approval_stored_;
  // An approved run reads delta whatever its inbox says: the round that
  // was held may have been the one a notification asked for.
  notified_ = notified_ || deletes_approved_;
  if (status_.state == calendar_state::held) {
    if (!deletes_approved_)
      return end(); // waiting for an administrator
    status_.deletes_in_window = 0;
    status_.state = calendar_state::active;
    status_.last_error.clear();
  }
  auto after_calendar = [this] {
    if (status_.state == calendar_state::initial_sync)
      return initial_sync([this] { active_round(); });
    active_round();
  };
  if (status_.office365_calendar_id.empty())
    return create_calendar(after_calendar);
  after_calendar();
}

bool calendar_run::halted() const {
  return ctx_.halt.load();
}

void calendar_run::end() {
  if (ended_)
    return;
  ended_ = true;
  // A delta page partly applied when the run failed keeps what it did
  // (links of the events it made).
  if (page_batch_ && !page_batch_->empty())
    ctx_.db.write(*page_batch_);
  page_batch_.reset();
  auto done = std::move(on_end_);
  done(failed_, status_);
}

void calendar_run::call(
    graph::call_spec spec,
    std::function<void(graph::result<graph::response>&)> k) {
  bool on_mailbox = !spec.mailbox.empty();
  governed<graph::response>(
      [this, spec = std::move(spec)](graph::callback<graph::response> done) {
        ctx_.graph.start(spec, std::move(done));
      },
      std::move(k), on_mailbox);
}

void calendar_run::send(
    const graph_request& r,
    std::function<void(graph::result<graph::response>&)> k) {
  graph::call_spec spec;
  spec.tenant = o365_tenant_;
  spec.mailbox = oid_;
  spec.method = r.method;
  spec.path_or_url = r.url;
  spec.body = r.body;
  spec.headers = r.headers;
  call(std::move(spec), std::move(k));
}

graph::call_spec calendar_run::mailbox_call(std::string method,
                                            std::string path,
                                            std::string body) const {
  graph::call_spec spec;
  spec.tenant = o365_tenant_;
  spec.mailbox = oid_;
  spec.method = std::move(method);
  spec.path_or_url = std::move(path);
  spec.body = std::move(body);
  return spec;
}

graph::call_spec calendar_run::tenant_call(std::string method, std::string path,
                                           std::string body) const {
  auto spec = mailbox_call(std::move(method), std::move(path), std::move(body));
  spec.mailbox.clear();
  return spec;
}

const log::context& calendar_run::trace() const {
  return trace_;
}

bool calendar_run::load() {
  status_.org = org_;
  status_.user = user_;
  auto request_key = keys::sync_request_key(org_, user_);
  auto status_key = keys::sync_state(org_, user_, entity_kind::calendar);
  auto user_key = keys::user(org_, user_);
  auto org_key = keys::org(org_);
  auto teardown_key = storage::teardown_rows::key(org_, user_);
  auto approval_key = keys::sync_approval_key(org_, user_);
  std::vector<std::optional<std::string>> v;
  if (ctx_.db.multi_get({{column::sync, request_key},
                         {column::sync, status_key},
                         {column::users, user_key},
                         {column::orgs, org_key},
                         {column::sync, teardown_key},
                         {column::sync, approval_key}},
                        v))
    return false;
  auto& request = v[0];
  auto& status = v[1];
  auto& user = v[2];
  auto& org = v[3];
  auto& teardown = v[4];
  auto& approval = v[5];
  if (request && !codec::decode(*request, request_))
    return false;
  if (status && !codec::decode(*status, status_))
    return false;
  if (status)
    stored_status_ = std::move(*status);
  user_record u;
  if (user && codec::decode(*user, u))
    oid_ = u.o365_user;
  org_record o;
  if (org && codec::decode(*org, o)) {
    o365_tenant_ = o.o365_tenant;
    policy_ = o.conflicts;
  }
  // Office 365 was disconnected (or the organization is being deleted):
  // the calendar and subscription to remove live where the row says.
  std::string td_tenant, td_user;
  torn_down_ = teardown
               && storage::teardown_rows::parse(*teardown, td_tenant, td_user);
  if (torn_down_) {
    o365_tenant_ = std::move(td_tenant);
    oid_ = std::move(td_user);
  }
  approval_stored_ = approval.has_value();
  return true;
}

std::string calendar_run::put_status(storage::write_batch& b) {
  auto encoded = codec::encode(status_);
  b.put(column::sync, keys::sync_state(org_, user_, entity_kind::calendar),
        encoded);
  stored_status_.clear();
  return encoded;
}

void calendar_run::save_status() {
  if (!stored_status_.empty() && codec::encode(status_) == stored_status_)
    return;
  storage::write_batch b;
  auto encoded = put_status(b);
  if (ctx_.db.write(b))
    log::error("sync: cannot save the status of " + user_.str());
  else
    stored_status_ = std::move(encoded);
}

void calendar_run::fail(const std::string& why) {
  // Calls cut short by a shutdown are not the sync's failures: the next
  // start resumes where this run stopped.
  if (halted())
    return;
  failed_ = true;
  status_.last_error = why;
  if (status_.state == calendar_state::disabled)
    status_.state = calendar_state::error;
  save_status();
  log::warn("sync " + org_.str() + "/" + user_.str() + ": " + why);
}

void calendar_run::note_failure(const graph::error& e) {
  if (e.client_request_id.empty())
    return; // never reached the wire: nothing to quote to Microsoft
  auto& f = status_.last_failure;
  f.at_ms = cfg_.now_ms();
  f.status = e.status;
  f.code = e.code;
  f.client_request_id = e.client_request_id;
  f.request_id = e.request_id;
  f.date = e.date;
}

void calendar_run::fail(const std::string& what, const graph::error& e) {
  note_failure(e);
  auto c = classify(e, target::calendar);
  if (c.what == disposition::blocked)
    block(what + ": " + e.describe(), c.reason);
  else
    fail(what + ": " + e.describe());
}

void calendar_run::block(const std::string& why, std::string_view reason) {
  if (halted())
    return;
  failed_ = true;
  status_.last_error = why;
  if (status_.state != calendar_state::error) {
    status_.resume_state = to_string(status_.state);
    status_.state = calendar_state::error;
  }
  storage::write_batch b;
  if (status_.alert != reason) {
    status_.alert = std::string{reason};
    put_audit(b, "sync.blocked",
              "calendar sync of user " + user_.str() + " is blocked ("
                  + status_.alert + "): " + why);
    metrics::node().sync_alert(status_.alert);
    if (reason == "mailbox_not_enabled")
      offboard(why);
  }
  put_status(b);
  if (ctx_.db.write(b))
    log::error("sync: cannot save the status of " + user_.str());
  log::warn("sync " + org_.str() + "/" + user_.str() + ": blocked ("
            + status_.alert + "): " + why);
}

void calendar_run::offboard(const std::string& why) {
  offboard_user cmd;
  cmd.user = user_;
  cmd.reason = "the Office 365 mailbox is gone or disabled: " + why;
  ask_tenant<user_record>(
      std::move(cmd), [](user_record&) {},
      [this](const api_error& err) {
        log::warn("sync " + org_.str() + "/" + user_.str()
                  + ": cannot deactivate the offboarded user: " + err.message);
      });
}

void calendar_run::close_alert() {
  storage::write_batch b;
  put_audit(b, "sync.recovered",
            "calendar sync of user " + user_.str() + " works again after "
                + status_.alert);
  status_.alert.clear();
  status_.resume_state.clear();
  if (ctx_.db.write(b))
    log::error("sync: cannot audit the recovery of " + user_.str());
}

void calendar_run::put_audit(storage::write_batch& b, std::string action,
                             std::string detail) {
  audit_entry a;
  a.org = org_;
  a.at_ms = cfg_.now_ms();
  a.seq = crypto::random_u64();
  a.actor = "sync";
  a.action = std::move(action);
  a.detail = std::move(detail);
  b.put(column::audit, keys::audit(a.org, a.at_ms, a.seq), codec::encode(a));
}

void calendar_run::skip(const event_record& e, const graph::error& err) {
  note_failure(err);
  unskip(e.id);
  if (status_.skipped.size() >= max_skipped)
    status_.skipped.erase(status_.skipped.begin());
  status_.skipped.push_back(skipped_event{e.id, e.version, cfg_.now_ms(),
                                          err.status, err.code, err.message});
  status_.last_error = "Office 365 refused CRM event " + e.id.str() + ": "
                       + err.describe() + "; it is not synced";
  log::warn("sync " + org_.str() + "/" + user_.str() + ": "
            + status_.last_error);
}

void calendar_run::unskip(event_id e) {
  auto& v = status_.skipped;
  v.erase(std::remove_if(v.begin(), v.end(),
                         [e](const skipped_event& k) { return k.event == e; }),
          v.end());
}

bool calendar_run::find_link(event_id e, sync_link& out) {
  std::string v;
  bool found = false;
  return !ctx_.db.get(column::links, keys::link(org_, user_, e), v, found)
         && found && codec::decode(v, out);
}

bool calendar_run::event_of_graph_id(const std::string& gid, event_id& out) {
  std::string v;
  bool found = false;
  if (ctx_.db.get(column::lookup, keys::graph_event_lookup(gid), v, found)
      || !found || v.size() != 24 || keys::get_be64(v, 0) != org_.value
      || keys::get_be64(v, 8) != user_.value)
    return false;
  out = event_id{keys::get_be64(v, 16)};
  return true;
}

void calendar_run::put_link(storage::write_batch& b, const sync_link& l) {
  storage::put_sync_link(b, org_, user_, l);
}

void calendar_run::del_link(storage::write_batch& b, const sync_link& l) {
  storage::del_sync_link(b, org_, user_, l);
}

bool calendar_run::load_event(event_id id, event_record& out, bool& found) {
  std::string v;
  found = false;
  if (ctx_.db.get(column::events, keys::event(org_, id), v, found))
    return false;
  return !found || codec::decode(v, out);
}

bool calendar_run::load_event_and_link(event_id id, bool with_event,
                                       event_record& e, bool& exists,
                                       sync_link& l, bool& linked) {
  auto link_key = keys::link(org_, user_, id);
  auto event_key = keys::event(org_, id);
  std::vector<storage::key_ref> wanted{{column::links, link_key}};
  if (with_event)
    wanted.push_back({column::events, event_key});
  std::vector<std::optional<std::string>> v;
  exists = false;
  linked = false;
  if (ctx_.db.multi_get(wanted, v))
    return false;
  linked = v[0] && codec::decode(*v[0], l);
  if (!with_event || !v[1])
    return true;
  exists = true;
  return codec::decode(*v[1], e);
}

calendar_paths calendar_run::paths() const {
  return calendar_paths{oid_, status_.office365_calendar_id};
}

} // namespace crmsync::sync::calendar
