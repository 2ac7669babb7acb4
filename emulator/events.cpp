// graph-emulator: events (/v1.0/users/{user}[/calendars/{cal}]/events),
// their rendering and the bodies that create and change them.

#include "emulator/service_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>

#include "common/crypto.hpp"
#include "common/text.hpp"
#include "common/time_format.hpp"
#include "emulator/recurrence.hpp"
#include "emulator/time_zones.hpp"
#include "http/url.hpp"

namespace crmsync::emulator {

namespace {

const std::string utc_name = "UTC";

} // namespace

/// Renders an event; start/end in `zone` (UTC unless a read asked for
/// another with Prefer: outlook.timezone).
void service::impl::write_event(json::writer& w, const event& e,
                                const user& owner,
                                const std::vector<std::string>& expand_props,
                                const std::string& zone) {
  const std::string& out_zone = zone.empty() ? utc_name : zone;
  w.begin_object();
  w.key("@odata.etag").value("W/\"" + e.change_key + "\"");
  w.key("id").value(e.id);
  w.key("createdDateTime").value(format_rfc3339_ms(e.created_ms));
  w.key("lastModifiedDateTime").value(format_rfc3339_ms(e.modified_ms));
  w.key("changeKey").value(e.change_key);
  w.key("categories").begin_array();
  for (auto& c : e.categories)
    w.value(c);
  w.end_array();
  if (!e.transaction_id.empty())
    w.key("transactionId").value(e.transaction_id);
  w.key("originalStartTimeZone").value(e.start_time_zone);
  w.key("originalEndTimeZone").value(e.end_time_zone);
  w.key("iCalUId").value(e.ical_uid);
  w.key("reminderMinutesBeforeStart").value(e.reminder_minutes);
  w.key("isReminderOn").value(e.is_reminder_on);
  w.key("hasAttachments").value(false);
  w.key("subject").value(e.subject);
  w.key("bodyPreview").value(e.body_content.substr(0, 255));
  w.key("importance").value("normal");
  w.key("sensitivity").value(e.sensitivity);
  w.key("isAllDay").value(e.is_all_day);
  w.key("isCancelled").value(false);
  w.key("isOrganizer").value(true);
  w.key("responseRequested").value(true);
  w.key("seriesMasterId");
  if (e.series_master_id.empty())
    w.null();
  else
    w.value(e.series_master_id);
  if (!e.series_master_id.empty())
    w.key("originalStart").value(format_rfc3339(e.original_start_ms));
  w.key("showAs").value(e.show_as);
  w.key("type").value(e.recurrence.active           ? "seriesMaster"
                      : e.exception                 ? "exception"
                      : !e.series_master_id.empty() ? "occurrence"
                                                    : "singleInstance");
  w.key("recurrence");
  if (e.recurrence.active)
    w.raw(e.recurrence.json);
  else
    w.null();
  w.key("body").begin_object();
  w.key("contentType").value(e.body_content_type);
  w.key("content").value(e.body_content);
  w.end_object();
  for (auto [name, ms] : {std::pair{"start", e.start_ms}, {"end", e.end_ms}}) {
    int64_t local = ms;
    utc_to_local(out_zone, ms, local);
    w.key(name).begin_object();
    w.key("dateTime").value(graph_date_time(local));
    w.key("timeZone").value(out_zone);
    w.end_object();
  }
  w.key("location").begin_object();
  w.key("displayName").value(e.location);
  w.key("locationType").value("default");
  w.end_object();
  w.key("attendees").raw(e.attendees_json);
  w.key("organizer").begin_object().key("emailAddress").begin_object();
  w.key("name").value(owner.display_name);
  w.key("address").value(owner.mail.empty() ? owner.user_principal_name
                                            : owner.mail);
  w.end_object().end_object();
  if (!expand_props.empty()) {
    w.key("singleValueExtendedProperties").begin_array();
    for (auto& id : expand_props) {
      auto p = e.extended_properties.find(id);
      if (p == e.extended_properties.end())
        continue;
      w.begin_object().key("id").value(p->first);
      w.key("value").value(p->second).end_object();
    }
    w.end_array();
  }
  w.end_object();
}

/// Applies a create/PATCH body to an event. `create` demands start/end.
bool service::impl::apply_event_body(std::string_view body, event& e,
                                     bool create, body_error& err) {
  object o;
  if (!parse_body(body, o, err))
    return false;
  bool have_start = false, have_end = false;
  for (auto kv : o) {
    auto k = kv.key;
    if (k == "subject") {
      if (!read_string(kv.value, e.subject)) {
        err.message = "'subject' must be a string";
        return false;
      }
    } else if (k == "body") {
      object b;
      if (kv.value.get_object().get(b)) {
        err.message = "'body' must be an itemBody";
        return false;
      }
      std::string_view ct, content;
      if (!b["contentType"].get_string().get(ct))
        e.body_content_type = ascii_lower(ct);
      if (!b["content"].get_string().get(content))
        e.body_content.assign(content);
    } else if (k == "start") {
      if (!read_date_time_zone(kv.value, "start", e.start_ms, e.start_time_zone,
                               err))
        return false;
      have_start = true;
    } else if (k == "end") {
      if (!read_date_time_zone(kv.value, "end", e.end_ms, e.end_time_zone, err))
        return false;
      have_end = true;
    } else if (k == "isAllDay") {
      if (kv.value.get_bool().get(e.is_all_day)) {
        err.message = "'isAllDay' must be a boolean";
        return false;
      }
    } else if (k == "location") {
      object l;
      std::string_view name;
      if (kv.value.get_object().get(l)) {
        err.message = "'location' must be a location";
        return false;
      }
      if (!l["displayName"].get_string().get(name))
        e.location.assign(name);
    } else if (k == "attendees") {
      simdjson::dom::array a;
      if (kv.value.get_array().get(a)) {
        err.message = "'attendees' must be an array";
        return false;
      }
      e.attendees_json = to_json_text(kv.value);
    } else if (k == "sensitivity" || k == "showAs") {
      static const std::set<std::string_view> sensitivities{
          "normal", "personal", "private", "confidential"};
      static const std::set<std::string_view> show_as{
          "free", "tentative", "busy", "oof", "workingElsewhere", "unknown"};
      bool sens = k == "sensitivity";
      std::string_view value;
      if (kv.value.get_string().get(value)
          || (sens ? sensitivities : show_as).count(value) == 0) {
        err.code = "RequestBodyRead";
        err.message = "Cannot convert the literal '" + to_json_text(kv.value)
                      + "' to the expected type 'microsoft.graph."
                      + (sens ? "sensitivity" : "freeBusyStatus") + "'.";
        return false;
      }
      (sens ? e.sensitivity : e.show_as).assign(value);
    } else if (k == "isReminderOn") {
      if (kv.value.get_bool().get(e.is_reminder_on)) {
        err.message = "'isReminderOn' must be a boolean";
        return false;
      }
    } else if (k == "reminderMinutesBeforeStart") {
      int64_t minutes = 0;
      if (kv.value.get_int64().get(minutes) || minutes < 0
          || minutes > 2147483647) {
        err.code = "RequestBodyRead";
        err.message = "Cannot convert the literal '" + to_json_text(kv.value)
                      + "' to the expected type 'Edm.Int32'.";
        return false;
      }
      e.reminder_minutes = minutes;
    } else if (k == "categories") {
      simdjson::dom::array a;
      std::vector<std::string> names;
      bool ok = !kv.value.get_array().get(a);
      if (ok)
        for (element c : a) {
          std::string name;
          ok = ok && read_string(c, name);
          names.push_back(std::move(name));
        }
      if (!ok) {
        err.code = "RequestBodyRead";
        err.message = "'categories' must be an array of strings";
        return false;
      }
      e.categories = std::move(names);
    } else if (k == "transactionId") {
      if (!create) {
        err.message = "transactionId cannot be changed after creation";
        return false;
      }
      if (!read_string(kv.value, e.transaction_id)) {
        err.message = "'transactionId' must be a string";
        return false;
      }
    } else if (k == "recurrence") {
      if (kv.value.is_null()) {
        e.recurrence = recurrence_rule{};
      } else if (!read_recurrence(kv.value, e.recurrence, err)) {
        return false;
      }
    } else if (k == "singleValueExtendedProperties") {
      simdjson::dom::array a;
      if (kv.value.get_array().get(a)) {
        err.message = "'singleValueExtendedProperties' must be an array";
        return false;
      }
      for (element p : a) {
        std::string_view id, value;
        if (p["id"].get_string().get(id)
            || p["value"].get_string().get(value)) {
          err.message = "each extended property needs 'id' and 'value'";
          return false;
        }
        e.extended_properties[std::string{id}] = std::string{value};
      }
    }
    // Other event properties are accepted and not stored, as far as the
    // emulator is concerned they do not exist.
  }
  if (create && (!have_start || !have_end)) {
    err.code = "ErrorInvalidRequest";
    err.message = "Your request can't be completed. The start and end "
                  "times are required.";
    return false;
  }
  if (e.end_ms < e.start_ms) {
    err.code = "ErrorInvalidRequest";
    err.message = "Your request can't be completed. The end time must be "
                  "after the start time.";
    return false;
  }
  int64_t local_start = e.start_ms, local_end = e.end_ms;
  utc_to_local(e.start_time_zone, e.start_ms, local_start);
  utc_to_local(e.end_time_zone, e.end_ms, local_end);
  if (e.is_all_day
      && (e.start_time_zone != e.end_time_zone || local_start % 86'400'000 != 0
          || local_end % 86'400'000 != 0)) {
    err.code = "ErrorInvalidRequest";
    err.message = "Your request can't be completed. When the event is an "
                  "all-day event, the start and end time must be midnight "
                  "and in the same time zone.";
    return false;
  }
  return true;
}

/// `$expand=singleValueExtendedProperties($filter=id eq '…')` → ids.
std::vector<std::string>
service::impl::expanded_props(const http::query_params& q) {
  std::vector<std::string> out;
  auto v = http::find_param(q, "$expand");
  if (v == nullptr)
    return out;
  std::string_view s{*v};
  size_t pos = 0;
  while ((pos = s.find("id eq '", pos)) != std::string_view::npos) {
    pos += 7;
    auto end = s.find('\'', pos);
    if (end == std::string_view::npos)
      break;
    out.emplace_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

/// `$filter=singleValueExtendedProperties/Any(ep: ep/id eq 'I' and
/// ep/value eq 'V')` → (I, V); false when there is no such filter.
bool service::impl::extended_filter(const http::query_params& q,
                                    std::string& id, std::string& value) {
  auto v = http::find_param(q, "$filter");
  if (v == nullptr)
    return false;
  std::string_view s{*v};
  auto grab = [&](std::string_view marker, std::string& out) {
    auto p = s.find(marker);
    if (p == std::string_view::npos)
      return false;
    p += marker.size();
    auto end = s.find('\'', p);
    if (end == std::string_view::npos)
      return false;
    out.assign(s.substr(p, end - p));
    return true;
  };
  return grab("/id eq '", id) && grab("/value eq '", value);
}

// -- routes

void service::impl::install_events_routes() {
  auto self = this;

  // ---- Graph: events
  // ------------------------------------------------------------------------

  // Creating, in a named calendar or the default one.
  auto create_event = [self](request& req, const std::string& user_key,
                             const std::string* cal_id, responder_ptr r) {
    std::lock_guard<std::mutex> guard{self->mtx};
    user* u = nullptr;
    auto mb = self->open_mailbox(req, r, user_key, u);
    if (mb == nullptr)
      return;
    auto c = self->open_calendar(req, r, *mb, cal_id);
    if (c == nullptr)
      return;
    event e;
    body_error err;
    if (!self->apply_event_body(req.body, e, true, err))
      return r->reply(
          graph_error(req, 400, err.code, err.message, self->now()));
    // A retried POST with the same transactionId returns the first event.
    // Looked up by index: a scan of the calendar made every initial sync
    // cost the square of its events.
    if (!e.transaction_id.empty()) {
      auto t = c->by_transaction.find(e.transaction_id);
      if (t != c->by_transaction.end()) {
        auto existing = mb->events.find(t->second);
        if (existing != mb->events.end()) {
          json::writer w;
          self->write_event(w, existing->second, *u, {});
          return r->reply(json_response(201, w.take()));
        }
        c->by_transaction.erase(t); // its event is gone
      }
    }
    auto now = self->now();
    e.id = new_item_id();
    e.calendar_id = c->id;
    e.change_key = new_change_key();
    e.ical_uid
        = "040000008200E00074C5B7101A82E008" + to_hex16(crypto::random_u64());
    e.created_ms = now;
    e.modified_ms = now;
    c->event_ids.push_back(e.id);
    if (!e.transaction_id.empty())
      c->by_transaction[e.transaction_id] = e.id;
    self->record_change(*u, *c, e.id);
    mb->events[e.id] = e;
    self->notify_change(*u, *c, e, "created");
    json::writer w;
    self->write_event(w, e, *u, {});
    r->reply(json_response(201, w.take()));
  };
  routes.add(
      "POST", "/v1.0/users/{user}/calendars/{cal}/events",
      [create_event](request& req, const http::path_params& pp,
                     responder_ptr r) { create_event(req, pp[0], &pp[1], r); });
  routes.add("POST", "/v1.0/users/{user}/events",
             [create_event](request& req, const http::path_params& pp,
                            responder_ptr r) {
               create_event(req, pp[0], nullptr, r);
             });

  // Listing (paged), optionally filtered by an extended property.
  auto list_events = [self](request& req, const std::string& user_key,
                            const std::string* cal_id, responder_ptr r) {
    http::query_params q;
    if (!http::parse_query(req.query, q))
      return r->reply(graph_error(req, 400, "BadRequest",
                                  "Invalid query string.", self->now()));
    size_t top = default_event_page, skip = 0;
    if (auto v = http::find_param(q, "$top")) {
      char* end = nullptr;
      auto n = std::strtol(v->c_str(), &end, 10);
      if (v->empty() || *end != '\0' || n < 1 || n > 1000)
        return r->reply(graph_error(req, 400, "ErrorInvalidUrlQuery",
                                    "The value of $top is invalid.",
                                    self->now()));
      top = static_cast<size_t>(n);
    }
    if (auto v = http::find_param(q, "$skip")) {
      char* end = nullptr;
      auto n = std::strtol(v->c_str(), &end, 10);
      if (v->empty() || *end != '\0' || n < 0)
        return r->reply(graph_error(req, 400, "ErrorInvalidUrlQuery",
                                    "The value of $skip is invalid.",
                                    self->now()));
      skip = static_cast<size_t>(n);
    }
    std::string filter_id, filter_value;
    bool filtered = extended_filter(q, filter_id, filter_value);
    auto expand = expanded_props(q);
    auto zone = preferred_zone(req);
    std::lock_guard<std::mutex> guard{self->mtx};
    user* u = nullptr;
    auto mb = self->open_mailbox(req, r, user_key, u);
    if (mb == nullptr)
      return;
    auto c = self->open_calendar(req, r, *mb, cal_id);
    if (c == nullptr)
      return;
    std::vector<const event*> matching;
    for (auto& id : c->event_ids) {
      auto& e = mb->events[id];
      if (filtered) {
        auto p = e.extended_properties.find(filter_id);
        if (p == e.extended_properties.end() || p->second != filter_value)
          continue;
      }
      matching.push_back(&e);
    }
    json::writer w;
    w.begin_object();
    size_t end = std::min(matching.size(), skip + top);
    if (end < matching.size()) {
      // The whole query is carried, with the position, as Graph does.
      std::string next = base_url(req) + raw_path(req) + "?";
      for (auto& [k, v] : q)
        if (k != "$skip")
          next += http::percent_encode(k) + "=" + http::percent_encode(v) + "&";
      next += "$skip=" + std::to_string(end);
      w.key("@odata.nextLink").value(next);
    }
    w.key("value").begin_array();
    for (size_t i = skip; i < end; ++i)
      self->write_event(w, *matching[i], *u, expand, zone);
    w.end_array().end_object();
    auto res = json_response(200, w.take());
    applied_zone(res, zone);
    r->reply(std::move(res));
  };
  routes.add(
      "GET", "/v1.0/users/{user}/calendars/{cal}/events",
      [list_events](request& req, const http::path_params& pp,
                    responder_ptr r) { list_events(req, pp[0], &pp[1], r); });
  routes.add(
      "GET", "/v1.0/users/{user}/events",
      [list_events](request& req, const http::path_params& pp,
                    responder_ptr r) { list_events(req, pp[0], nullptr, r); });

  // One event: GET, PATCH (If-Match), DELETE (If-Match).
  enum class verb { get, patch, del };
  // GET of one event (or occurrence), in the zone the caller prefers.
  auto read_answer = [self](const request& req, const event& e, const user& u,
                            const std::vector<std::string>& expand) {
    auto zone = preferred_zone(req);
    json::writer w;
    self->write_event(w, e, u, expand, zone);
    auto res = json_response(200, w.take());
    applied_zone(res, zone);
    return res;
  };
  // 412 when an If-Match names another change key than the event's.
  auto stale_if_match
      = [self](const request& req, const event& e) -> std::optional<response> {
    auto if_match = req.header("if-match");
    if (if_match.empty() || if_match == "*"
        || if_match == "W/\"" + e.change_key + "\"")
      return std::nullopt;
    return graph_error(
        req, 412, "ErrorIrresolvableConflict",
        "The send or update operation could not be performed because the "
        "change key passed in the request does not match the current "
        "change key for the item.",
        self->now());
  };
  auto one_event = [self, read_answer, stale_if_match](
                       verb v, request& req, const std::string& user_key,
                       const std::string* cal_id, const std::string& ev_id,
                       responder_ptr r) {
    http::query_params q;
    http::parse_query(req.query, q);
    auto expand = expanded_props(q);
    std::lock_guard<std::mutex> guard{self->mtx};
    user* u = nullptr;
    auto mb = self->open_mailbox(req, r, user_key, u);
    if (mb == nullptr)
      return;
    auto i = mb->events.find(ev_id);
    if (i == mb->events.end()) {
      // One occurrence of a series: read, edited (it becomes an exception
      // of the series) or cancelled on its own.
      const event* master = nullptr;
      auto occ = find_occurrence(*mb, nullptr, ev_id, &master);
      if (!occ || (cal_id && occ->calendar_id != *cal_id))
        return r->reply(self->item_not_found(req));
      auto c = self->find_calendar(*mb, occ->calendar_id);
      if (v == verb::get)
        return r->reply(read_answer(req, *occ, *u, expand));
      if (auto refused = stale_if_match(req, *occ))
        return r->reply(std::move(*refused));
      if (v == verb::del) {
        // The series reports the cancelled occurrence as removed.
        c->changed_series[master->id].push_back(*master);
        c->exceptions.erase(ev_id);
        c->cancelled.insert(ev_id);
        self->record_change(*u, *c, master->id);
        self->notify_change(*u, *c, *occ, "deleted");
        response res;
        res.status = 204;
        return r->reply(std::move(res));
      }
      auto updated = *occ;
      body_error err;
      if (!self->apply_event_body(req.body, updated, false, err))
        return r->reply(
            graph_error(req, 400, err.code, err.message, self->now()));
      if (updated.recurrence.active)
        return r->reply(graph_error(req, 400, "ErrorInvalidRequest",
                                    "An occurrence cannot get a recurrence.",
                                    self->now()));
      updated.change_key = new_change_key();
      updated.modified_ms = std::max(self->now(), occ->modified_ms + 1);
      updated.exception = true;
      c->exceptions[ev_id] = updated;
      self->record_change(*u, *c, master->id);
      self->notify_change(*u, *c, updated, "updated");
      json::writer w;
      self->write_event(w, updated, *u, {});
      return r->reply(json_response(200, w.take()));
    }
    if (cal_id && i->second.calendar_id != *cal_id)
      return r->reply(self->item_not_found(req));
    auto& e = i->second;
    if (v == verb::get)
      return r->reply(read_answer(req, e, *u, expand));
    if (auto refused = stale_if_match(req, e))
      return r->reply(std::move(*refused));
    if (v == verb::del) {
      auto c = self->find_calendar(*mb, e.calendar_id);
      if (c != nullptr)
        c->event_ids.erase(
            std::remove(c->event_ids.begin(), c->event_ids.end(), ev_id),
            c->event_ids.end());
      if (c != nullptr) {
        if (e.recurrence.active) {
          c->deleted_series[ev_id] = e;
          auto prefix = ev_id + "_";
          for (auto x = c->exceptions.lower_bound(prefix);
               x != c->exceptions.end()
               && x->first.compare(0, prefix.size(), prefix) == 0;)
            x = c->exceptions.erase(x);
          for (auto x = c->cancelled.lower_bound(prefix);
               x != c->cancelled.end()
               && x->compare(0, prefix.size(), prefix) == 0;)
            x = c->cancelled.erase(x);
        }
        self->record_change(*u, *c, ev_id);
        self->notify_change(*u, *c, e, "deleted");
      }
      mb->events.erase(i);
      response res;
      res.status = 204;
      return r->reply(std::move(res));
    }
    auto updated = e;
    body_error err;
    if (!self->apply_event_body(req.body, updated, false, err))
      return r->reply(
          graph_error(req, 400, err.code, err.message, self->now()));
    updated.change_key = new_change_key();
    updated.modified_ms = std::max(self->now(), e.modified_ms + 1);
    auto c = self->find_calendar(*mb, e.calendar_id);
    if (c != nullptr && e.recurrence.active
        && (!updated.recurrence.active
            || updated.recurrence.json != e.recurrence.json
            || updated.start_ms != e.start_ms)) {
      auto& versions = c->changed_series[e.id];
      versions.push_back(e);
      constexpr size_t kept = 16;
      if (versions.size() > kept)
        versions.erase(versions.begin());
    }
    e = updated;
    if (c != nullptr) {
      self->record_change(*u, *c, e.id);
      self->notify_change(*u, *c, e, "updated");
    }
    json::writer w;
    self->write_event(w, e, *u, {});
    r->reply(json_response(200, w.take()));
  };
  struct verb_route {
    const char* method;
    verb v;
  };
  for (auto vr :
       {verb_route{"GET", verb::get}, verb_route{"PATCH", verb::patch},
        verb_route{"DELETE", verb::del}}) {
    auto v = vr.v;
    routes.add(vr.method, "/v1.0/users/{user}/events/{event}",
               [one_event, v](request& req, const http::path_params& pp,
                              responder_ptr r) {
                 one_event(v, req, pp[0], nullptr, pp[1], r);
               });
    routes.add(vr.method, "/v1.0/users/{user}/calendars/{cal}/events/{event}",
               [one_event, v](request& req, const http::path_params& pp,
                              responder_ptr r) {
                 one_event(v, req, pp[0], &pp[1], pp[2], r);
               });
  }
}

} // namespace crmsync::emulator
