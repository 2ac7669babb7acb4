#include "protocol/json.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <simdjson.h>

#include "common/json_text.hpp"
#include "common/time_format.hpp"

namespace crmsync::json {

// -- writing
// ----------------------------------------------------------------------

void append_string(std::string& out, std::string_view s) {
  append_json_string(out, s);
}

void writer::comma() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back())
      out_ += ',';
    first_.back() = false;
  }
}

writer& writer::begin_object() {
  comma();
  out_ += '{';
  first_.push_back(true);
  return *this;
}

writer& writer::end_object() {
  out_ += '}';
  first_.pop_back();
  return *this;
}

writer& writer::begin_array() {
  comma();
  out_ += '[';
  first_.push_back(true);
  return *this;
}

writer& writer::end_array() {
  out_ += ']';
  first_.pop_back();
  return *this;
}

writer& writer::key(std::string_view k) {
  comma();
  append_string(out_, k);
  out_ += ':';
  after_key_ = true;
  return *this;
}

writer& writer::value(std::string_view s) {
  comma();
  append_string(out_, s);
  return *this;
}

writer& writer::value(int64_t x) {
  comma();
  out_ += std::to_string(x);
  return *this;
}

writer& writer::value(uint64_t x) {
  comma();
  out_ += std::to_string(x);
  return *this;
}

writer& writer::value(bool x) {
  comma();
  out_ += x ? "true" : "false";
  return *this;
}

writer& writer::null() {
  comma();
  out_ += "null";
  return *this;
}

writer& writer::value_or_null(std::string_view s) {
  return s.empty() ? null() : value(s);
}

writer& writer::time_or_null(int64_t ms) {
  return ms == 0 ? null() : value(format_rfc3339(ms));
}

writer& writer::raw(std::string_view encoded) {
  comma();
  out_ += encoded;
  return *this;
}

// -- encoding records
// -----------------------------------------------------------------

std::string event_time(int64_t ms, bool all_day) {
  return all_day ? format_date(ms) : format_rfc3339(ms);
}

void write_org(writer& w, const org_record& x) {
  w.begin_object();
  w.key("id").value(x.id.str());
  w.key("name").value(x.name);
  w.key("edition").value(to_string(x.plan));
  w.key("super_admin_id").value(x.super_admin.str());
  w.key("users").value(x.user_count);
  w.key("events").value(x.event_count);
  w.key("office365_tenant_id").value_or_null(x.o365_tenant);
  w.key("conflict_policy").value(to_string(x.conflicts));
  w.key("created_at").value(format_rfc3339(x.created_ms));
  w.key("modified_at").value(format_rfc3339(x.modified_ms));
  w.end_object();
}

void write_user(writer& w, const user_record& x) {
  w.begin_object();
  w.key("id").value(x.id.str());
  w.key("org_id").value(x.org.str());
  w.key("email").value(x.email);
  w.key("name").value(x.name);
  w.key("profile").value(to_string(x.role));
  w.key("manage_users").value(x.manage_users);
  w.key("super_admin").value(x.super_admin);
  w.key("view_all_events").value(x.view_all_events);
  w.key("active").value(!x.deactivated);
  w.key("has_password").value(!x.password_hash.empty());
  w.key("office365_user_id").value_or_null(x.o365_user);
  w.key("created_at").value(format_rfc3339(x.created_ms));
  w.key("modified_at").value(format_rfc3339(x.modified_ms));
  w.end_object();
}

void write_event(writer& w, const event_record& x) {
  w.begin_object();
  w.key("id").value(x.id.str());
  w.key("org_id").value(x.org.str());
  w.key("owner").value(x.owner.str());
  w.key("title").value(x.title);
  w.key("start").value(event_time(x.start_ms, x.all_day));
  w.key("end").value(event_time(x.end_ms, x.all_day));
  w.key("all_day").value(x.all_day);
  w.key("time_zone")
      .value(x.time_zone.empty() ? std::string_view{"UTC"}
                                 : std::string_view{x.time_zone});
  w.key("location").value(x.location);
  w.key("description").value(x.description);
  w.key("participants").begin_array();
  for (auto& p : x.participants) {
    w.begin_object();
    w.key("email").value(p.email);
    if (!p.name.empty())
      w.key("name").value(p.name);
    w.end_object();
  }
  w.end_array();
  w.key("sensitivity").value(x.sensitivity);
  w.key("show_as").value(x.show_as);
  w.key("reminder_on").value(x.reminder_on);
  w.key("reminder_minutes").value(x.reminder_minutes);
  w.key("categories").begin_array();
  for (auto& c : x.categories)
    w.value(c);
  w.end_array();
  w.key("origin").value(to_string(x.origin));
  w.key("version").value(x.version);
  w.key("created_at").value(format_rfc3339(x.created_ms));
  w.key("modified_at").value(format_rfc3339(x.modified_ms));
  w.end_object();
}

void write_calendar_status(writer& w, const calendar_status& x) {
  w.begin_object();
  w.key("state").value(to_string(x.state));
  w.key("progress").begin_object();
  w.key("done").value(x.done);
  w.key("total").value(x.total);
  w.end_object();
  w.key("office365_calendar_id").value_or_null(x.office365_calendar_id);
  w.key("last_error").value_or_null(x.last_error);
  w.key("last_sync").time_or_null(x.last_sync_ms);
  w.key("subscription_id").value_or_null(x.subscription_id);
  w.key("subscription_expires").time_or_null(x.subscription_expires_ms);
  w.key("outbox").value(x.outbox);
  w.key("inbox").value(x.inbox);
  w.key("to_office365").begin_object();
  w.key("created").value(x.out_created);
  w.key("updated").value(x.out_updated);
  w.key("deleted").value(x.out_deleted);
  w.end_object();
  w.key("from_office365").begin_object();
  w.key("created").value(x.in_created);
  w.key("updated").value(x.in_updated);
  w.key("deleted").value(x.in_deleted);
  w.end_object();
  // Office 365 blocks the user (state "error"): why, until a run gets
  // through.
  w.key("alert").value_or_null(x.alert);
  // The last Graph call that failed, with the ids to quote to Microsoft.
  w.key("last_graph_failure");
  if (x.last_failure.at_ms == 0) {
    w.null();
  } else {
    const auto& f = x.last_failure;
    w.begin_object();
    w.key("at").value(format_rfc3339(f.at_ms));
    w.key("status").value(f.status);
    w.key("code").value(f.code);
    w.key("client_request_id").value_or_null(f.client_request_id);
    w.key("request_id").value_or_null(f.request_id);
    w.key("date").value_or_null(f.date);
    w.end_object();
  }
  w.key("skipped").begin_array();
  for (auto& k : x.skipped) {
    w.begin_object();
    w.key("event").value(k.event.str());
    w.key("version").value(k.version);
    w.key("status").value(k.status);
    w.key("code").value(k.code);
    w.key("message").value(k.message);
    w.key("at").value(format_rfc3339(k.at_ms));
    w.end_object();
  }
  w.end_array();
  w.end_object();
}

void write_error(writer& w, const api_error& e) {
  w.begin_object();
  w.key("error").begin_object();
  w.key("code").value(e.code);
  w.key("message").value(e.message);
  if (!e.field.empty())
    w.key("field").value(e.field);
  w.end_object();
  w.end_object();
}

std::string encode_error(const api_error& e) {
  writer w;
  write_error(w, e);
  return w.take();
}

// -- decoding
// -----------------------------------------------------------------------------

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

constexpr size_t max_short_text = 255;
constexpr size_t max_long_text = 32 * 1024;
constexpr size_t max_participants = 500;

caf::error bad(std::string field, std::string message,
               std::string code = "invalid_field") {
  return make_crm_error(crm_errc::invalid_input, std::move(code),
                        std::move(message), std::move(field));
}

caf::error unknown_field(std::string_view prefix, std::string_view key) {
  std::string f{prefix};
  f += key;
  return bad(f, "unknown field '" + f + "'", "unknown_field");
}

// Parses the body into an object with a per-thread parser. The returned
// element stays valid until this thread parses again.
caf::error parse_object(std::string_view body, object& out) {
  thread_local simdjson::dom::parser parser;
  element doc;
  if (body.empty())
    return bad("", "request body is empty; a JSON object is required",
               "malformed_json");
  if (parser.parse(body.data(), body.size()).get(doc))
    return bad("", "request body is not valid JSON", "malformed_json");
  if (doc.get_object().get(out))
    return bad("", "request body must be a JSON object", "malformed_json");
  // A repeated member would make "the value" ambiguous (and could add up
  // lists past their limits): refuse it.
  std::vector<std::string_view> seen;
  for (auto kv : out) {
    // No request object has more than a handful of members; the cap keeps
    // this check linear in practice.
    if (seen.size() == 64)
      return bad("", "request body has too many fields", "invalid_field");
    for (auto k : seen)
      if (k == kv.key)
        return bad(std::string{kv.key},
                   "field '" + std::string{kv.key} + "' appears twice",
                   "duplicate_field");
    seen.push_back(kv.key);
  }
  return caf::none;
}

// Reads a UTF-8 string of bounded length (in bytes).
caf::error get_text(element v, const std::string& field, size_t max_len,
                    bool required_nonempty, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s))
    return bad(field, "'" + field + "' must be a string");
  if (s.size() > max_len)
    return bad(field, "'" + field + "' is longer than "
                          + std::to_string(max_len) + " bytes");
  if (required_nonempty
      && s.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return bad(field, "'" + field + "' must not be empty");
  out.assign(s.data(), s.size());
  return caf::none;
}

caf::error get_bool(element v, const std::string& field, bool& out) {
  if (v.get_bool().get(out))
    return bad(field, "'" + field + "' must be true or false");
  return caf::none;
}

caf::error missing(const std::string& field) {
  return bad(field, "'" + field + "' is required", "missing_field");
}

// A time value: an RFC 3339 timestamp, or a date when `date_form`.
caf::error get_time(element v, const std::string& field, bool date_form,
                    int64_t& out) {
  std::string_view s;
  if (v.get_string().get(s))
    return bad(field, "'" + field + "' must be a string");
  auto parsed = date_form ? parse_date_ms(s) : parse_rfc3339_ms(s);
  if (!parsed)
    return bad(field, date_form ? "'" + field
                                      + "' must be a date (YYYY-MM-DD) for an "
                                        "all-day event"
                                : "'" + field
                                      + "' must be an RFC 3339 time such as "
                                        "2026-11-26T14:00:00Z");
  out = *parsed;
  return caf::none;
}

// A start/end value whose form (date or timestamp) is not known up front.
caf::error get_time_any(element v, const std::string& field, int64_t& out,
                        bool& is_date) {
  std::string_view s;
  if (v.get_string().get(s))
    return bad(field, "'" + field + "' must be a string");
  is_date = s.size() == 10;
  return get_time(v, field, is_date, out);
}

caf::error get_participants(element v, const std::string& field,
                            std::vector<participant>& out) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr))
    return bad(field, "'" + field + "' must be an array");
  out.clear();
  size_t i = 0;
  for (element item : arr) {
    std::string f = field + "[" + std::to_string(i) + "]";
    if (++i > max_participants)
      return bad(field, "at most " + std::to_string(max_participants)
                            + " participants");
    participant p;
    std::string_view s;
    object o;
    if (!item.get_string().get(s)) {
      if (!normalize_email(s, p.email))
        return bad(f, "'" + f + "' is not an e-mail address");
    } else if (!item.get_object().get(o)) {
      bool have_email = false;
      for (auto kv : o) {
        if (kv.key == "email") {
          std::string raw;
          if (auto err = get_text(kv.value, f + ".email", 320, true, raw))
            return err;
          if (!normalize_email(raw, p.email))
            return bad(f + ".email",
                       "'" + f + ".email' is not an e-mail address");
          have_email = true;
        } else if (kv.key == "name") {
          if (auto err
              = get_text(kv.value, f + ".name", max_short_text, false, p.name))
            return err;
        } else {
          return unknown_field(f + ".", kv.key);
        }
      }
      if (!have_email)
        return missing(f + ".email");
    } else {
      return bad(f, "'" + f
                        + "' must be an e-mail address or an object "
                          "with 'email' and 'name'");
    }
    out.push_back(std::move(p));
  }
  return caf::none;
}

constexpr size_t max_categories = 25;

/// What Outlook shows of an event besides its content, the same in a
/// create and a patch. Returns false when `key` is none of them; `err` is
/// set when the value is bad. `out.fields` gets the bit of what was set.
bool get_outlook_field(std::string_view key, element v, const std::string& f,
                       event_patch& out, caf::error& err) {
  if (key == "sensitivity") {
    if ((err = get_text(v, f, 32, true, out.sensitivity)))
      return true;
    if (!valid_sensitivity(out.sensitivity))
      err = bad(f, "'" + f
                       + "' must be normal, personal, private or "
                         "confidential");
    out.fields |= event_patch::f_sensitivity;
  } else if (key == "show_as") {
    if ((err = get_text(v, f, 32, true, out.show_as)))
      return true;
    if (!valid_show_as(out.show_as))
      err = bad(f, "'" + f
                       + "' must be free, tentative, busy, oof, "
                         "workingElsewhere or unknown");
    out.fields |= event_patch::f_show_as;
  } else if (key == "reminder_on") {
    err = get_bool(v, f, out.reminder_on);
    out.fields |= event_patch::f_reminder_on;
  } else if (key == "reminder_minutes") {
    if (v.get_int64().get(out.reminder_minutes) || out.reminder_minutes < 0
        || out.reminder_minutes > max_reminder_minutes)
      err = bad(f, "'" + f + "' must be a whole number of minutes from 0 to "
                       + std::to_string(max_reminder_minutes));
    out.fields |= event_patch::f_reminder_minutes;
  } else if (key == "categories") {
    simdjson::dom::array arr;
    if (v.get_array().get(arr) || arr.size() > max_categories) {
      err = bad(f, "'" + f + "' must be an array of at most "
                       + std::to_string(max_categories) + " names");
      return true;
    }
    out.categories.clear();
    size_t i = 0;
    for (element c : arr) {
      std::string name;
      auto fi = f + "[" + std::to_string(i++) + "]";
      if ((err = get_text(c, fi, max_short_text, true, name)))
        return true;
      for (auto& seen : out.categories)
        if (seen == name) {
          err = bad(fi, "'" + fi + "' names a category twice");
          return true;
        }
      out.categories.push_back(std::move(name));
    }
    out.fields |= event_patch::f_categories;
  } else {
    return false;
  }
  return true;
}

// Decodes one event object (for create and import); `prefix` names the
// position in the request ("events[3].").
caf::error decode_event_object(object obj, const std::string& prefix,
                               event_record& out) {
  bool all_day = false;
  bool have_title = false;
  element start_v, end_v;
  bool have_start = false, have_end = false;
  event_patch outlook; // sensitivity, show_as, reminders, categories
  for (auto kv : obj) {
    std::string f = prefix + std::string{kv.key};
    caf::error field_err;
    if (get_outlook_field(kv.key, kv.value, f, outlook, field_err)) {
      if (field_err)
        return field_err;
    } else if (kv.key == "title") {
      if (auto err = get_text(kv.value, f, max_short_text, true, out.title))
        return err;
      have_title = true;
    } else if (kv.key == "start") {
      start_v = kv.value;
      have_start = true;
    } else if (kv.key == "end") {
      end_v = kv.value;
      have_end = true;
    } else if (kv.key == "all_day") {
      if (auto err = get_bool(kv.value, f, all_day))
        return err;
    } else if (kv.key == "location") {
      if (auto err = get_text(kv.value, f, max_short_text, false, out.location))
        return err;
    } else if (kv.key == "description") {
      if (auto err
          = get_text(kv.value, f, max_long_text, false, out.description))
        return err;
    } else if (kv.key == "time_zone") {
      if (auto err = get_text(kv.value, f, 64, false, out.time_zone))
        return err;
    } else if (kv.key == "participants") {
      if (auto err = get_participants(kv.value, f, out.participants))
        return err;
    } else {
      return unknown_field(prefix, kv.key);
    }
  }
  if (!have_title)
    return missing(prefix + "title");
  apply_patch(outlook, out);
  if (!have_start)
    return missing(prefix + "start");
  if (!have_end)
    return missing(prefix + "end");
  out.all_day = all_day;
  if (auto err = get_time(start_v, prefix + "start", all_day, out.start_ms))
    return err;
  if (auto err = get_time(end_v, prefix + "end", all_day, out.end_ms))
    return err;
  if (all_day ? out.end_ms <= out.start_ms : out.end_ms < out.start_ms)
    return bad(prefix + "end",
               all_day ? "'end' of an all-day event is exclusive and must be "
                         "after 'start'"
                       : "'end' must not be before 'start'");
  return caf::none;
}

caf::error decode_patch_fields(object obj, const std::string& prefix,
                               bool allow_version, event_patch& out,
                               uint64_t& version) {
  bool start_date = false, end_date = false;
  for (auto kv : obj) {
    std::string f = prefix + std::string{kv.key};
    caf::error field_err;
    if (get_outlook_field(kv.key, kv.value, f, out, field_err)) {
      if (field_err)
        return field_err;
    } else if (kv.key == "title") {
      if (auto err = get_text(kv.value, f, max_short_text, true, out.title))
        return err;
      out.fields |= event_patch::f_title;
    } else if (kv.key == "start") {
      if (auto err = get_time_any(kv.value, f, out.start_ms, start_date))
        return err;
      out.fields |= event_patch::f_start;
    } else if (kv.key == "end") {
      if (auto err = get_time_any(kv.value, f, out.end_ms, end_date))
        return err;
      out.fields |= event_patch::f_end;
    } else if (kv.key == "all_day") {
      if (auto err = get_bool(kv.value, f, out.all_day))
        return err;
      out.fields |= event_patch::f_all_day;
    } else if (kv.key == "location") {
      if (auto err = get_text(kv.value, f, max_short_text, false, out.location))
        return err;
      out.fields |= event_patch::f_location;
    } else if (kv.key == "description") {
      if (auto err
          = get_text(kv.value, f, max_long_text, false, out.description))
        return err;
      out.fields |= event_patch::f_description;
    } else if (kv.key == "time_zone") {
      if (auto err = get_text(kv.value, f, 64, false, out.time_zone))
        return err;
      out.fields |= event_patch::f_time_zone;
    } else if (kv.key == "participants") {
      if (auto err = get_participants(kv.value, f, out.participants))
        return err;
      out.fields |= event_patch::f_participants;
    } else if (allow_version && kv.key == "version") {
      if (kv.value.get_uint64().get(version) || version == 0)
        return bad(f, "'version' must be a positive integer");
    } else {
      return unknown_field(prefix, kv.key);
    }
  }
  // When the patch says which form applies, the values must match it.
  if (out.has(event_patch::f_all_day)) {
    if (out.has(event_patch::f_start) && start_date != out.all_day)
      return bad(prefix + "start",
                 out.all_day ? "'start' must be a date for an all-day event"
                             : "'start' must be an RFC 3339 time");
    if (out.has(event_patch::f_end) && end_date != out.all_day)
      return bad(prefix + "end",
                 out.all_day ? "'end' must be a date for an all-day event"
                             : "'end' must be an RFC 3339 time");
  }
  return caf::none;
}

caf::error get_id_list(element v, const std::string& field, size_t max_ids,
                       std::vector<event_id>& out) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr))
    return bad(field, "'" + field + "' must be an array of event ids");
  size_t i = 0;
  for (element item : arr) {
    std::string f = field + "[" + std::to_string(i++) + "]";
    if (out.size() >= max_ids)
      return bad(field, "at most " + std::to_string(max_ids) + " ids");
    std::string_view s;
    if (item.get_string().get(s))
      return bad(f, "'" + f + "' must be a string");
    auto id = event_id::parse(s);
    if (!id)
      return bad(f, "'" + f + "' is not an event id");
    out.push_back(*id);
  }
  return caf::none;
}

} // namespace

bool normalize_email(std::string_view in, std::string& out) {
  auto b = in.find_first_not_of(" \t");
  auto e = in.find_last_not_of(" \t");
  if (b == std::string_view::npos)
    return false;
  in = in.substr(b, e - b + 1);
  if (in.size() > 254)
    return false;
  auto at = in.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= in.size()
      || in.find('@', at + 1) != std::string_view::npos)
    return false;
  auto domain = in.substr(at + 1);
  if (domain.find('.') == std::string_view::npos || domain.front() == '.'
      || domain.back() == '.' || domain.find("..") != std::string_view::npos)
    return false;
  out.clear();
  for (char c : in) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '<' || c == '>' || c == ',' || c == ';'
        || c == '"' || c == '(' || c == ')' || c == '[' || c == ']'
        || c == '\\')
      return false;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return true;
}

caf::error decode_org_create(std::string_view body, org_body& out) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  bool have_name = false, have_admin = false, have_edition = false;
  for (auto kv : obj) {
    if (kv.key == "name") {
      if (auto err = get_text(kv.value, "name", max_short_text, true, out.name))
        return err;
      have_name = true;
    } else if (kv.key == "edition") {
      std::string_view s;
      if (kv.value.get_string().get(s) || !from_string(s, out.plan))
        return bad("edition", "'edition' must be \"free\" or \"paid\"");
      have_edition = true;
    } else if (kv.key == "admin") {
      object a;
      if (kv.value.get_object().get(a))
        return bad("admin", "'admin' must be an object");
      bool have_email = false, have_admin_name = false;
      for (auto akv : a) {
        if (akv.key == "email") {
          std::string raw;
          if (auto err = get_text(akv.value, "admin.email", 320, true, raw))
            return err;
          if (!normalize_email(raw, out.admin_email))
            return bad("admin.email", "'admin.email' is not an e-mail address");
          have_email = true;
        } else if (akv.key == "name") {
          if (auto err = get_text(akv.value, "admin.name", max_short_text, true,
                                  out.admin_name))
            return err;
          have_admin_name = true;
        } else if (akv.key == "password") {
          if (auto err = get_text(akv.value, "admin.password", 1024, true,
                                  out.admin_password))
            return err;
          if (out.admin_password.size() < 8)
            return bad("admin.password",
                       "'admin.password' needs at least 8 characters");
        } else {
          return unknown_field("admin.", akv.key);
        }
      }
      if (!have_email)
        return missing("admin.email");
      if (!have_admin_name)
        return missing("admin.name");
      have_admin = true;
    } else {
      return unknown_field("", kv.key);
    }
  }
  if (!have_name)
    return missing("name");
  if (!have_edition)
    return missing("edition");
  if (!have_admin)
    return missing("admin");
  return caf::none;
}

caf::error decode_org_patch(std::string_view body, update_org& out) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  for (auto kv : obj) {
    if (kv.key == "name") {
      if (auto err = get_text(kv.value, "name", max_short_text, true, out.name))
        return err;
      out.set_name = true;
    } else if (kv.key == "edition") {
      std::string_view s;
      if (kv.value.get_string().get(s) || !from_string(s, out.plan))
        return bad("edition", "'edition' must be \"free\" or \"paid\"");
      out.set_plan = true;
    } else if (kv.key == "conflict_policy") {
      std::string_view s;
      if (kv.value.get_string().get(s) || !from_string(s, out.conflicts))
        return bad("conflict_policy", "'conflict_policy' must be \"latest\", "
                                      "\"crm\" or \"office365\"");
      out.set_conflicts = true;
    } else {
      return unknown_field("", kv.key);
    }
  }
  if (!out.set_name && !out.set_plan && !out.set_conflicts)
    return bad("",
               "nothing to change: give 'name', 'edition' and/or "
               "'conflict_policy'",
               "empty_patch");
  return caf::none;
}

namespace {

caf::error get_profile(element v, profile& out) {
  std::string_view s;
  if (v.get_string().get(s) || !from_string(s, out))
    return bad("profile",
               "'profile' must be \"administrator\" or \"standard\"");
  return caf::none;
}

} // namespace

caf::error decode_user_patch(std::string_view body, user_patch& out) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  for (auto kv : obj) {
    if (kv.key == "name") {
      if (auto err = get_text(kv.value, "name", max_short_text, true, out.name))
        return err;
      out.set_name = true;
    } else if (kv.key == "profile") {
      if (auto err = get_profile(kv.value, out.role))
        return err;
      out.set_role = true;
    } else if (kv.key == "manage_users") {
      if (auto err = get_bool(kv.value, "manage_users", out.manage_users))
        return err;
      out.set_manage_users = true;
    } else if (kv.key == "view_all_events") {
      if (auto err = get_bool(kv.value, "view_all_events", out.view_all_events))
        return err;
      out.set_view_all_events = true;
    } else if (kv.key == "super_admin") {
      if (auto err = get_bool(kv.value, "super_admin", out.super_admin))
        return err;
      out.set_super_admin = true;
    } else {
      return unknown_field("", kv.key);
    }
  }
  if (!out.set_name && !out.set_role && !out.set_manage_users
      && !out.set_view_all_events && !out.set_super_admin)
    return bad("",
               "nothing to change: give 'name', 'profile', 'manage_users', "
               "'view_all_events' and/or 'super_admin'",
               "empty_patch");
  return caf::none;
}

caf::error decode_user_create(std::string_view body, user_body& out) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  bool have_email = false, have_name = false, have_profile = false;
  for (auto kv : obj) {
    if (kv.key == "email") {
      std::string raw;
      if (auto err = get_text(kv.value, "email", 320, true, raw))
        return err;
      if (!normalize_email(raw, out.email))
        return bad("email", "'email' is not an e-mail address");
      have_email = true;
    } else if (kv.key == "name") {
      if (auto err = get_text(kv.value, "name", max_short_text, true, out.name))
        return err;
      have_name = true;
    } else if (kv.key == "profile") {
      if (auto err = get_profile(kv.value, out.role))
        return err;
      have_profile = true;
    } else if (kv.key == "manage_users") {
      if (auto err = get_bool(kv.value, "manage_users", out.manage_users))
        return err;
    } else if (kv.key == "view_all_events") {
      if (auto err = get_bool(kv.value, "view_all_events", out.view_all_events))
        return err;
    } else if (kv.key == "super_admin") {
      if (auto err = get_bool(kv.value, "super_admin", out.super_admin))
        return err;
    } else if (kv.key == "password") {
      if (auto err = get_text(kv.value, "password", 1024, true, out.password))
        return err;
      if (out.password.size() < 8)
        return bad("password", "'password' needs at least 8 characters");
    } else {
      return unknown_field("", kv.key);
    }
  }
  if (!have_email)
    return missing("email");
  if (!have_name)
    return missing("name");
  if (!have_profile)
    return missing("profile");
  if (out.super_admin && out.role != profile::administrator)
    return bad("super_admin",
               "a super administrator's 'profile' must be \"administrator\"");
  return caf::none;
}

caf::error decode_event_create(std::string_view body, event_record& out) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  return decode_event_object(obj, "", out);
}

caf::error decode_event_patch(std::string_view body, event_patch& out,
                              uint64_t& expected_version) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  if (auto err = decode_patch_fields(obj, "", true, out, expected_version))
    return err;
  if (out.fields == 0)
    return bad("", "nothing to change: give at least one event field",
               "empty_patch");
  return caf::none;
}

caf::error decode_import(std::string_view body, user_id& owner,
                         std::vector<event_record>& out, size_t max_events) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  bool have_owner = false, have_events = false;
  for (auto kv : obj) {
    if (kv.key == "owner") {
      std::string_view s;
      if (kv.value.get_string().get(s))
        return bad("owner", "'owner' must be a user id string");
      auto id = user_id::parse(s);
      if (!id)
        return bad("owner", "'owner' is not a user id");
      owner = *id;
      have_owner = true;
    } else if (kv.key == "events") {
      simdjson::dom::array arr;
      if (kv.value.get_array().get(arr))
        return bad("events", "'events' must be an array of events");
      size_t i = 0;
      for (element item : arr) {
        std::string prefix = "events[" + std::to_string(i++) + "].";
        if (out.size() >= max_events)
          return bad("events", "at most " + std::to_string(max_events)
                                   + " events per import");
        object eo;
        if (item.get_object().get(eo))
          return bad(prefix.substr(0, prefix.size() - 1),
                     "each event must be an object");
        event_record e;
        if (auto err = decode_event_object(eo, prefix, e))
          return err;
        out.push_back(std::move(e));
      }
      have_events = true;
    } else {
      return unknown_field("", kv.key);
    }
  }
  if (!have_owner)
    return missing("owner");
  if (!have_events)
    return missing("events");
  if (out.empty())
    return bad("events", "'events' must not be empty");
  return caf::none;
}

caf::error decode_mass_update(std::string_view body, std::vector<event_id>& ids,
                              event_patch& out, size_t max_ids) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  bool have_ids = false, have_set = false;
  for (auto kv : obj) {
    if (kv.key == "ids") {
      if (auto err = get_id_list(kv.value, "ids", max_ids, ids))
        return err;
      have_ids = true;
    } else if (kv.key == "set") {
      object so;
      if (kv.value.get_object().get(so))
        return bad("set", "'set' must be an object of event fields");
      uint64_t unused = 0;
      if (auto err = decode_patch_fields(so, "set.", false, out, unused))
        return err;
      have_set = true;
    } else {
      return unknown_field("", kv.key);
    }
  }
  if (!have_ids)
    return missing("ids");
  if (ids.empty())
    return bad("ids", "'ids' must not be empty");
  if (!have_set)
    return missing("set");
  if (out.fields == 0)
    return bad("set", "'set' must change at least one field", "empty_patch");
  return caf::none;
}

caf::error decode_invites_create(std::string_view body,
                                 std::vector<std::string>& ids,
                                 size_t max_ids) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  const std::string field = "office365_user_ids";
  bool have = false;
  for (auto kv : obj) {
    if (kv.key != field)
      return unknown_field("", kv.key);
    simdjson::dom::array arr;
    if (kv.value.get_array().get(arr))
      return bad(field, "'" + field + "' must be an array of user ids");
    if (arr.size() == 0 || arr.size() > max_ids)
      return bad(field, "'" + field + "' must hold 1 to "
                            + std::to_string(max_ids) + " ids");
    for (element item : arr) {
      std::string id;
      if (auto err = get_text(item, field, 64, true, id))
        return err;
      for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-'))
          return bad(field, "'" + id + "' is not an Office 365 user id");
      if (std::find(ids.begin(), ids.end(), id) != ids.end())
        return bad(field, "'" + id + "' is listed twice");
      ids.push_back(std::move(id));
    }
    have = true;
  }
  if (!have)
    return missing(field);
  return caf::none;
}

namespace {

caf::error decode_credentials_object(object obj, const std::string& prefix,
                                     credentials& out) {
  bool have_email = false, have_password = false;
  for (auto kv : obj) {
    if (kv.key == "email") {
      std::string raw;
      if (auto err = get_text(kv.value, prefix + "email", 320, true, raw))
        return err;
      if (!normalize_email(raw, out.email))
        return bad(prefix + "email",
                   "'" + prefix + "email' is not an e-mail address");
      have_email = true;
    } else if (kv.key == "password") {
      if (auto err
          = get_text(kv.value, prefix + "password", 1024, true, out.password))
        return err;
      have_password = true;
    } else {
      return unknown_field(prefix, kv.key);
    }
  }
  if (!have_email)
    return missing(prefix + "email");
  if (!have_password)
    return missing(prefix + "password");
  return caf::none;
}

} // namespace

caf::error decode_credentials(std::string_view body, credentials& out) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  return decode_credentials_object(obj, "", out);
}

caf::error decode_invite_accept(std::string_view body, accept_body& out) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  bool have_terms = false;
  for (auto kv : obj) {
    if (kv.key == "accept_terms") {
      if (auto err = get_bool(kv.value, "accept_terms", out.accept_terms))
        return err;
      have_terms = true;
    } else if (kv.key == "associate") {
      object inner;
      if (kv.value.get_object().get(inner))
        return bad("associate",
                   "'associate' must be an object with email and password");
      if (auto err
          = decode_credentials_object(inner, "associate.", out.account))
        return err;
      out.associate = true;
    } else {
      return unknown_field("", kv.key);
    }
  }
  if (!have_terms)
    return missing("accept_terms");
  if (!out.accept_terms)
    return bad("accept_terms",
               "the terms and conditions must be accepted to join",
               "terms_not_accepted");
  return caf::none;
}

bool decode_graph_user(std::string_view json, graph_user& out) {
  thread_local simdjson::dom::parser parser;
  object obj;
  if (parser.parse(json.data(), json.size()).get_object().get(obj))
    return false;
  std::string_view v;
  if (obj["id"].get_string().get(v) || v.empty())
    return false;
  out.id = std::string{v};
  auto text = [&](const char* key, std::string& field) {
    std::string_view x;
    field = obj[key].get_string().get(x) ? std::string{} : std::string{x};
  };
  text("displayName", out.display_name);
  text("userPrincipalName", out.user_principal_name);
  text("mail", out.mail);
  return true;
}

bool decode_error(std::string_view body, api_error& out) {
  thread_local simdjson::dom::parser parser;
  object obj;
  if (parser.parse(body.data(), body.size()).get_object().get(obj))
    return false;
  object e;
  std::string_view code, message;
  if (obj["error"].get_object().get(e) || e["code"].get_string().get(code)
      || e["message"].get_string().get(message))
    return false;
  out.code = std::string{code};
  out.message = std::string{message};
  std::string_view field;
  out.field
      = e["field"].get_string().get(field) ? std::string{} : std::string{field};
  return true;
}

caf::error decode_calendar_sync(std::string_view body, bool& enabled) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  bool have = false;
  for (auto kv : obj) {
    if (kv.key != "enabled")
      return unknown_field("", kv.key);
    if (auto err = get_bool(kv.value, "enabled", enabled))
      return err;
    have = true;
  }
  if (!have)
    return missing("enabled");
  return caf::none;
}

caf::error decode_shard_move(std::string_view body, std::string& to) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  bool have = false;
  for (auto kv : obj) {
    if (kv.key != "to")
      return unknown_field("", kv.key);
    if (auto err = get_text(kv.value, "to", 200, true, to))
      return err;
    have = !to.empty();
  }
  if (!have)
    return missing("to");
  return caf::none;
}

caf::error decode_token_create(std::string_view body, int64_t now_ms,
                               token_body& out) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  bool have_name = false, have_expiry = false;
  for (auto kv : obj) {
    if (kv.key == "name") {
      if (auto err = get_text(kv.value, "name", 100, true, out.name))
        return err;
      have_name = true;
    } else if (kv.key == "expires_at") {
      if (have_expiry)
        return bad("expires_at",
                   "give 'expires_at' or 'expires_in_days', not both");
      if (auto err = get_time(kv.value, "expires_at", false, out.expires_ms))
        return err;
      have_expiry = true;
    } else if (kv.key == "expires_in_days") {
      if (have_expiry)
        return bad("expires_in_days",
                   "give 'expires_at' or 'expires_in_days', not both");
      int64_t days = 0;
      if (kv.value.get_int64().get(days) || days < 1 || days > 365)
        return bad("expires_in_days",
                   "'expires_in_days' must be an integer from 1 to 365");
      out.expires_ms = now_ms + days * 24 * 3600 * 1000;
      have_expiry = true;
    } else {
      return unknown_field("", kv.key);
    }
  }
  if (!have_name)
    return missing("name");
  if (!have_expiry)
    return missing("expires_at");
  if (out.expires_ms <= now_ms)
    return bad("expires_at", "'expires_at' must be in the future");
  if (out.expires_ms > now_ms + int64_t{366} * 24 * 3600 * 1000)
    return bad("expires_at", "a token expires within a year");
  return caf::none;
}

caf::error decode_new_password(std::string_view body, std::string& password) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  bool have = false;
  for (auto kv : obj) {
    if (kv.key != "password")
      return unknown_field("", kv.key);
    if (auto err = get_text(kv.value, "password", 1024, true, password))
      return err;
    if (password.size() < 8)
      return bad("password", "'password' needs at least 8 characters");
    have = true;
  }
  if (!have)
    return missing("password");
  return caf::none;
}

// t16-m365
caf::error decode_doctor(std::string_view body, std::string& tenant) {
  object obj;
  if (auto err = parse_object(body, obj))
    return err;
  for (auto kv : obj) {
    if (kv.key != "tenant")
      return unknown_field("", kv.key);
    if (auto err = get_text(kv.value, "tenant", 253, true, tenant))
      return err;
    // It goes into the token endpoint's path: a name, nothing else.
    for (char c : tenant)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-')
        return bad("tenant", "'tenant' must be a tenant id (GUID) or a "
                             "domain such as contoso.onmicrosoft.com");
  }
  return caf::none;
}

} // namespace crmsync::json
