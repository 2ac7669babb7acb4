#include "ctl/render.hpp"

#include "ctl/format.hpp"

#include <cstdint>

namespace crmsync::ctl {

namespace dom = simdjson::dom;

namespace {

using maybe_element = simdjson::simdjson_result<dom::element>;

constexpr std::size_t name_width = 40;
constexpr std::size_t title_width = 40;

maybe_element at(dom::element e, std::string_view pointer) {
  return e.at_pointer(pointer);
}

std::string text(dom::element e, std::string_view pointer) {
  return json_text(at(e, pointer));
}

bool unsigned_at(dom::element e, std::string_view pointer, std::uint64_t& out) {
  return at(e, pointer).get_uint64().get(out) == simdjson::SUCCESS;
}

// Numbers shown through a formatter; anything else is shown as sent.
template <class Format>
std::string formatted(dom::element e, std::string_view pointer, Format f) {
  std::uint64_t v = 0;
  if (unsigned_at(e, pointer, v))
    return f(v);
  return text(e, pointer);
}

table actor_kinds_table() {
  return table({{"KIND", align::left},
                {"LIVE", align::right},
                {"ACTIVATIONS", align::right},
                {"PASSIVATIONS", align::right}});
}

void add_kind_row(std::string kind, dom::element counters, table& out) {
  out.add_row({std::move(kind), text(counters, "/live"),
               text(counters, "/activations"),
               text(counters, "/passivations")});
}

} // namespace

bool parse_json(dom::parser& parser, const std::string& body, dom::element& out,
                std::string& err) {
  auto error = parser.parse(body).get(out);
  if (error != simdjson::SUCCESS) {
    err = simdjson::error_message(error);
    return false;
  }
  return true;
}

std::string json_text(maybe_element v) {
  dom::element e;
  if (v.get(e) != simdjson::SUCCESS)
    return "-";
  switch (e.type()) {
    case dom::element_type::STRING: {
      std::string_view s;
      return e.get_string().get(s) == simdjson::SUCCESS ? std::string(s) : "-";
    }
    case dom::element_type::BOOL: {
      bool b = false;
      if (e.get_bool().get(b) != simdjson::SUCCESS)
        return "-";
      return b ? "yes" : "no";
    }
    case dom::element_type::NULL_VALUE:
      return "-";
    default:
      return simdjson::to_string(e);
  }
}

api_error parse_api_error(const std::string& body) {
  api_error out;
  dom::parser parser;
  dom::element doc;
  std::string ignored;
  dom::object error;
  if (parse_json(parser, body, doc, ignored)
      && doc["error"].get_object().get(error) == simdjson::SUCCESS) {
    std::string_view s;
    if (error["code"].get_string().get(s) == simdjson::SUCCESS)
      out.code = std::string(s);
    if (error["message"].get_string().get(s) == simdjson::SUCCESS)
      out.message = std::string(s);
    if (error["field"].get_string().get(s) == simdjson::SUCCESS)
      out.field = std::string(s);
    return out;
  }
  std::string_view first(body);
  first = first.substr(0, first.find_first_of("\r\n"));
  while (!first.empty() && first.back() == ' ')
    first.remove_suffix(1);
  out.message = truncate(sanitize(first), 200);
  return out;
}

std::string render_status(dom::element doc) {
  kv_block kv;
  kv.add("node id", text(doc, "/node_id"));
  kv.add("version", text(doc, "/version"));
  kv.add("started at", text(doc, "/started_at"));
  kv.add("uptime", formatted(doc, "/uptime_s", format_duration_s));
  kv.add("listen", text(doc, "/listen"));
  kv.add("data dir", text(doc, "/data_dir"));
  kv.add("ready", text(doc, "/ready"));
  kv.add("storage keys",
         formatted(doc, "/storage/estimate_keys",
                   [](std::uint64_t v) { return "~" + std::to_string(v); }));
  kv.add("live sst", formatted(doc, "/storage/live_sst_bytes", format_bytes));
  kv.add("memtable", formatted(doc, "/storage/memtable_bytes", format_bytes));
  kv.add("http requests", text(doc, "/http/requests"));
  kv.add("http in flight", text(doc, "/http/in_flight"));
  std::string out = kv.render();

  dom::object actors;
  if (doc["actors"].get_object().get(actors) == simdjson::SUCCESS) {
    table kinds = actor_kinds_table();
    for (dom::key_value_pair kind : actors)
      add_kind_row(std::string(kind.key), kind.value, kinds);
    out += '\n';
    out += kinds.render();
  }
  return out;
}

std::string render_actors(dom::element doc) {
  kv_block kv;
  kv.add("idle timeout", formatted(doc, "/idle_timeout_ms", format_millis));
  std::string out = kv.render();

  dom::array kinds;
  if (doc["kinds"].get_array().get(kinds) == simdjson::SUCCESS) {
    table t = actor_kinds_table();
    for (dom::element k : kinds)
      add_kind_row(text(k, "/kind"), k, t);
    out += '\n';
    out += t.render();
  }

  dom::array items;
  if (doc["items"].get_array().get(items) == simdjson::SUCCESS) {
    table t({{"KIND", align::left},
             {"ID", align::left},
             {"IDLE", align::right},
             {"MESSAGES", align::right}});
    for (dom::element item : items)
      t.add_row({text(item, "/kind"), text(item, "/id"),
                 formatted(item, "/idle_ms", format_millis),
                 text(item, "/messages")});
    out += '\n';
    out += t.empty() ? std::string("no live actors\n") : t.render();
  }
  return out;
}

std::string render_tenant(dom::element doc) {
  kv_block kv;
  kv.add("id", text(doc, "/org/id"));
  kv.add("name", text(doc, "/org/name"));
  kv.add("edition", text(doc, "/org/edition"));
  kv.add("created at", text(doc, "/org/created_at"));
  kv.add("modified at", text(doc, "/org/modified_at"));
  kv.add("super admin", text(doc, "/org/super_admin_id"));
  kv.add("users", text(doc, "/users"));
  kv.add("events", text(doc, "/events"));
  bool active = false;
  if (doc["active"].get_bool().get(active) == simdjson::SUCCESS)
    kv.add("active", active ? "yes (actor live)" : "no (actor passivated)");
  else
    kv.add("active", text(doc, "/active"));
  return kv.render();
}

std::string render_user(dom::element doc) {
  kv_block kv;
  kv.section("User");
  kv.add("id", text(doc, "/user/id"));
  kv.add("email", text(doc, "/user/email"));
  kv.add("name", text(doc, "/user/name"));
  kv.add("profile", text(doc, "/user/profile"));
  kv.add("manage users", text(doc, "/user/manage_users"));
  kv.add("super admin", text(doc, "/user/super_admin"));
  kv.add("created at", text(doc, "/user/created_at"));
  kv.add("modified at", text(doc, "/user/modified_at"));
  kv.section("Organization");
  kv.add("id", text(doc, "/org/id"));
  kv.add("name", text(doc, "/org/name"));
  kv.add("edition", text(doc, "/org/edition"));
  kv.section("Mailbox");
  kv.add("active", text(doc, "/mailbox/active"));
  kv.add("office365 linked", text(doc, "/mailbox/office365_linked"));
  kv.section("Calendar");
  kv.add("active", text(doc, "/calendar/active"));
  kv.add("state", text(doc, "/calendar/state"));
  return kv.render();
}

table tenants_table() {
  return table({{"ID", align::left},
                {"NAME", align::left, name_width},
                {"EDITION", align::left},
                {"USERS", align::right},
                {"CREATED", align::left}});
}

table events_table() {
  return table({{"ID", align::left},
                {"START", align::left},
                {"END", align::left},
                {"TITLE", align::left, title_width},
                {"ORIGIN", align::left},
                {"VERSION", align::right}});
}

void add_tenant_rows(dom::array items, table& out) {
  for (dom::element t : items)
    out.add_row({text(t, "/id"), text(t, "/name"), text(t, "/edition"),
                 text(t, "/users"), text(t, "/created_at")});
}

void add_event_rows(dom::array items, table& out) {
  for (dom::element e : items)
    out.add_row({text(e, "/id"), text(e, "/start"), text(e, "/end"),
                 text(e, "/title"), text(e, "/origin"), text(e, "/version")});
}

} // namespace crmsync::ctl
