#include "sync/graph_event.hpp"

#include <algorithm>
#include <simdjson.h>

#include "common/time_format.hpp"
#include "common/time_zones.hpp"
#include "protocol/json.hpp"

namespace crmsync::sync {

namespace {

/// How crmsync's transactionIds begin (the org and event ids follow).
constexpr const char* own_transaction_prefix = "crmsync-";

using element = simdjson::dom::element;
using object = simdjson::dom::object;

constexpr int64_t day_ms = 86'400'000;

/// "2026-12-01T10:00:00": a wall time as Graph's dateTime wants it.
std::string graph_time(int64_t ms) {
  auto s = format_rfc3339(ms); // "2026-12-01T10:00:00Z"
  if (!s.empty() && s.back() == 'Z')
    s.pop_back();
  return s;
}

int64_t floor_day(int64_t ms) {
  return ms - (((ms % day_ms) + day_ms) % day_ms);
}

bool is_utc(std::string_view zone) {
  return zone.empty() || zone == "UTC" || zone == "Etc/UTC"
         || zone == "Coordinated Universal Time"
         || zone == "tzone://Microsoft/Utc";
}

/// The zone an event goes to Graph in: the one it was written in, when it
/// is a zone Graph knows; UTC otherwise (an unknown name would make Graph
/// refuse the whole event).
std::string graph_zone(const event_record& e) {
  if (is_utc(e.time_zone) || !known_time_zone(e.time_zone))
    return "UTC";
  return e.time_zone;
}

/// A time in `zone`. An all-day event's CRM times are dates (midnight
/// UTC of the day); Graph wants them as midnight in the event's zone.
void write_time(json::writer& w, const char* key, int64_t ms, bool all_day,
                const std::string& zone) {
  int64_t wall = floor_day(ms);
  if (!all_day && !utc_to_local(zone, ms, wall))
    wall = ms;
  w.key(key).begin_object();
  w.key("dateTime").value(graph_time(wall));
  w.key("timeZone").value(zone);
  w.end_object();
}

std::string text(element v, const char* key) {
  std::string_view s;
  if (v[key].get_string().get(s))
    return {};
  return std::string{s};
}

/// A dateTimeTimeZone: its wall time (a value with fractional seconds
/// "…T10:00:00.0000000" is cut to whole seconds) and its zone.
bool read_wall_time(element v, const char* key, int64_t& wall,
                    std::string& zone) {
  object o;
  std::string_view dt;
  if (v[key].get_object().get(o) || o["dateTime"].get_string().get(dt)
      || dt.size() < 19)
    return false;
  std::string whole{dt.substr(0, 19)};
  whole += 'Z';
  auto t = parse_rfc3339_ms(whole);
  if (!t)
    return false;
  wall = *t;
  std::string_view tz;
  zone = o["timeZone"].get_string().get(tz) ? std::string{"UTC"}
                                            : std::string{tz};
  return true;
}

/// The instant a dateTimeTimeZone names (crmsync reads in UTC, but a
/// value in another zone is converted, not misread).
bool read_time(element v, const char* key, int64_t& out) {
  int64_t wall = 0;
  std::string zone;
  if (!read_wall_time(v, key, wall, zone))
    return false;
  if (is_utc(zone)) {
    out = wall;
    return true;
  }
  return local_to_utc(zone, wall, out);
}

/// The day of an all-day event's start or end, as the CRM keeps it
/// (midnight UTC of the date). Graph shows an all-day event as midnight
/// dates whatever zone is asked for; should a service render the instant
/// instead (midnight in the event's zone, seen in UTC), the day is the
/// one in the event's zone, never a neighbour shifted by the offset.
bool read_all_day(element v, const char* key, const std::string& event_zone,
                  int64_t& out) {
  int64_t wall = 0;
  std::string zone;
  if (!read_wall_time(v, key, wall, zone))
    return false;
  if (wall % day_ms == 0 || !known_time_zone(event_zone)) {
    out = floor_day(wall);
    return true;
  }
  int64_t instant = wall, local = wall;
  if (!is_utc(zone) && !local_to_utc(zone, wall, instant))
    return false;
  if (!utc_to_local(event_zone, instant, local))
    return false;
  out = floor_day(local);
  return true;
}

/// sensitivity, showAs, isReminderOn, reminderMinutesBeforeStart and
/// categories; a value the CRM does not know keeps the CRM's default.
void read_outlook_fields(element v, event_record& c) {
  auto sensitivity = text(v, "sensitivity");
  if (valid_sensitivity(sensitivity))
    c.sensitivity = sensitivity;
  auto show_as = text(v, "showAs");
  if (valid_show_as(show_as))
    c.show_as = show_as;
  bool on = true;
  if (!v["isReminderOn"].get_bool().get(on))
    c.reminder_on = on;
  int64_t minutes = 0;
  if (!v["reminderMinutesBeforeStart"].get_int64().get(minutes))
    c.reminder_minutes = std::clamp<int64_t>(minutes, 0, max_reminder_minutes);
  simdjson::dom::array categories;
  if (!v["categories"].get_array().get(categories))
    for (element one : categories) {
      std::string_view name;
      if (!one.get_string().get(name) && !name.empty())
        c.categories.emplace_back(name);
    }
}

} // namespace

std::string summary(const event_record& e) {
  return "\"" + e.title + "\" " + format_rfc3339(e.start_ms) + " - "
         + format_rfc3339(e.end_ms);
}

std::string to_graph(const event_record& e, bool with_identity) {
  json::writer w;
  w.begin_object();
  w.key("subject").value(e.title);
  w.key("body").begin_object();
  w.key("contentType").value("text");
  w.key("content").value(e.description);
  w.end_object();
  auto zone = graph_zone(e);
  write_time(w, "start", e.start_ms, e.all_day, zone);
  write_time(w, "end", e.end_ms, e.all_day, zone);
  w.key("isAllDay").value(e.all_day);
  w.key("location").begin_object();
  w.key("displayName").value(e.location);
  w.end_object();
  w.key("sensitivity").value(e.sensitivity);
  w.key("showAs").value(e.show_as);
  w.key("isReminderOn").value(e.reminder_on);
  w.key("reminderMinutesBeforeStart").value(e.reminder_minutes);
  w.key("categories").begin_array();
  for (auto& c : e.categories)
    w.value(c);
  w.end_array();
  if (with_identity) {
    auto tag = e.org.str() + e.id.str();
    w.key("transactionId").value(own_transaction_prefix + tag);
    w.key("singleValueExtendedProperties").begin_array().begin_object();
    w.key("id").value(tag_property);
    w.key("value").value(tag);
    w.end_object().end_array();
  }
  w.end_object();
  return w.take();
}

bool own_create_of(const graph_event& item, tenant_id org, event_id& event) {
  auto prefix = std::string{own_transaction_prefix} + org.str();
  std::string_view t = item.transaction_id;
  if (t.size() <= prefix.size() || t.substr(0, prefix.size()) != prefix)
    return false;
  auto id = event_id::parse(t.substr(prefix.size()));
  if (!id)
    return false;
  event = *id;
  return true;
}

bool from_graph(std::string_view json, graph_event& out) {
  thread_local simdjson::dom::parser parser;
  element v;
  if (parser.parse(json.data(), json.size()).get(v) || !v.is_object())
    return false;
  out = graph_event{};
  out.id = text(v, "id");
  if (out.id.empty())
    return false;
  object removed;
  if (!v["@removed"].get_object().get(removed)) {
    out.removed = true;
    return true;
  }
  out.change_key = text(v, "changeKey");
  out.type = text(v, "type");
  out.transaction_id = text(v, "transactionId");
  if (auto m = parse_rfc3339_ms(text(v, "lastModifiedDateTime")))
    out.modified_ms = *m;
  auto& c = out.content;
  c.title = text(v, "subject");
  object body;
  if (!v["body"].get_object().get(body)) {
    std::string_view content;
    if (!body["content"].get_string().get(content))
      c.description = std::string{content};
  }
  object location;
  if (!v["location"].get_object().get(location)) {
    std::string_view name;
    if (!location["displayName"].get_string().get(name))
      c.location = std::string{name};
  }
  bool all_day = false;
  if (!v["isAllDay"].get_bool().get(all_day))
    c.all_day = all_day;
  read_outlook_fields(v, c);
  // The zone the event was written in (Windows or IANA name) stays with
  // it; UTC is the CRM's default and is not spelled out.
  auto zone = text(v, "originalStartTimeZone");
  if (!is_utc(zone) && known_time_zone(zone))
    c.time_zone = zone;
  if (c.all_day) {
    auto event_zone = zone.empty() ? std::string{"UTC"} : zone;
    if (!read_all_day(v, "start", event_zone, c.start_ms)
        || !read_all_day(v, "end", event_zone, c.end_ms))
      return false;
    if (c.end_ms <= c.start_ms)
      c.end_ms = c.start_ms + day_ms;
    return true;
  }
  if (!read_time(v, "start", c.start_ms) || !read_time(v, "end", c.end_ms))
    return false;
  if (c.end_ms < c.start_ms)
    c.end_ms = c.start_ms;
  return true;
}

bool parse_delta_page(std::string_view json, delta_page& out) {
  thread_local simdjson::dom::parser parser;
  element v;
  simdjson::dom::array items;
  if (parser.parse(json.data(), json.size()).get(v)
      || v["value"].get_array().get(items))
    return false;
  out = delta_page{};
  for (element item : items)
    out.items.push_back(simdjson::minify(item));
  out.next_link = text(v, "@odata.nextLink");
  out.delta_link = text(v, "@odata.deltaLink");
  return !out.next_link.empty() || !out.delta_link.empty();
}

bool read_id_and_change_key(std::string_view json, std::string& id,
                            std::string& change_key) {
  thread_local simdjson::dom::parser parser;
  element v;
  if (parser.parse(json.data(), json.size()).get(v))
    return false;
  id = text(v, "id");
  change_key = text(v, "changeKey");
  return !id.empty();
}

content_difference compare_content(const event_record& crm,
                                   const event_record& office365) {
  auto& c = office365;
  if (c.title != crm.title || c.start_ms != crm.start_ms
      || c.end_ms != crm.end_ms)
    return content_difference::title_or_times;
  if (c.sensitivity != crm.sensitivity || c.show_as != crm.show_as
      || c.reminder_on != crm.reminder_on
      || c.reminder_minutes != crm.reminder_minutes
      || c.categories != crm.categories)
    return content_difference::outlook_fields;
  return content_difference::none;
}

event_record as_sent(const event_record& e) {
  // from_graph wants an id: the body of a PATCH with one in front.
  graph_event back;
  if (!from_graph(R"({"id":"sent",)" + to_graph(e, false).substr(1), back))
    return e;
  return back.content;
}

} // namespace crmsync::sync
