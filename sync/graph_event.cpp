#include "sync/graph_event.hpp"

#include <simdjson.h>

#include "common/time_format.hpp"
#include "protocol/json.hpp"

namespace crmsync::sync {

namespace {

using element = simdjson::dom::element;
using object = simdjson::dom::object;

/// "2026-12-01T10:00:00" in UTC, as Graph's dateTimeTimeZone wants it.
std::string graph_time(int64_t ms) {
  auto s = format_rfc3339(ms); // "2026-12-01T10:00:00Z"
  if (!s.empty() && s.back() == 'Z')
    s.pop_back();
  return s;
}

void write_time(json::writer& w, const char* key, int64_t ms) {
  w.key(key).begin_object();
  w.key("dateTime").value(graph_time(ms));
  w.key("timeZone").value("UTC");
  w.end_object();
}

std::string text(element v, const char* key) {
  std::string_view s;
  if (v[key].get_string().get(s))
    return {};
  return std::string{s};
}

/// A dateTimeTimeZone read as UTC (crmsync asks Graph for UTC; a value
/// with fractional seconds "…T10:00:00.0000000" is cut to whole seconds).
bool read_time(element v, const char* key, int64_t& out) {
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
  out = *t;
  return true;
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
  write_time(w, "start", e.start_ms);
  write_time(w, "end", e.end_ms);
  w.key("isAllDay").value(e.all_day);
  w.key("location").begin_object();
  w.key("displayName").value(e.location);
  w.end_object();
  if (with_identity) {
    auto tag = e.org.str() + e.id.str();
    w.key("transactionId").value("crmsync-" + tag);
    w.key("singleValueExtendedProperties").begin_array().begin_object();
    w.key("id").value(tag_property);
    w.key("value").value(tag);
    w.end_object().end_array();
  }
  w.end_object();
  return w.take();
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

} // namespace crmsync::sync
