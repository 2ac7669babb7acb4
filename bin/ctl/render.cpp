#include "ctl/render.hpp"

#include "ctl/format.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <map>

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

// A row of a kv block showing the value at `pointer` as text.
struct text_row {
  const char* label;
  const char* pointer;
};

void add_text_rows(kv_block& kv, dom::element doc,
                   std::initializer_list<text_row> rows) {
  for (const text_row& row : rows)
    kv.add(row.label, text(doc, row.pointer));
}

// The organization's identity, from the "org" object of an answer.
void add_org_rows(kv_block& kv, dom::element doc) {
  add_text_rows(
      kv, doc,
      {{"id", "/org/id"}, {"name", "/org/name"}, {"edition", "/org/edition"}});
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
  add_text_rows(kv, doc,
                {{"node id", "/node_id"},
                 {"version", "/version"},
                 {"started at", "/started_at"}});
  kv.add("uptime", formatted(doc, "/uptime_s", format_duration_s));
  add_text_rows(
      kv, doc,
      {{"listen", "/listen"}, {"data dir", "/data_dir"}, {"ready", "/ready"}});
  kv.add("storage keys",
         formatted(doc, "/storage/estimate_keys",
                   [](std::uint64_t v) { return "~" + std::to_string(v); }));
  kv.add("live sst", formatted(doc, "/storage/live_sst_bytes", format_bytes));
  kv.add("memtable", formatted(doc, "/storage/memtable_bytes", format_bytes));
  add_text_rows(kv, doc,
                {{"http requests", "/http/requests"},
                 {"http in flight", "/http/in_flight"}});
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
  add_org_rows(kv, doc);
  add_text_rows(kv, doc,
                {{"created at", "/org/created_at"},
                 {"modified at", "/org/modified_at"},
                 {"super admin", "/org/super_admin_id"},
                 {"users", "/users"},
                 {"events", "/events"}});
  // A cluster node also says where the tenant lives (older nodes do not).
  if (doc["shard"].error() == simdjson::SUCCESS)
    add_text_rows(kv, doc, {{"shard", "/shard"}, {"node", "/node"}});
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
  add_text_rows(kv, doc,
                {{"id", "/user/id"},
                 {"email", "/user/email"},
                 {"name", "/user/name"},
                 {"profile", "/user/profile"},
                 {"manage users", "/user/manage_users"},
                 {"view all events", "/user/view_all_events"},
                 {"super admin", "/user/super_admin"},
                 {"created at", "/user/created_at"},
                 {"modified at", "/user/modified_at"}});
  kv.section("Organization");
  add_org_rows(kv, doc);
  kv.section("Mailbox");
  add_text_rows(kv, doc,
                {{"active", "/mailbox/active"},
                 {"office365 linked", "/mailbox/office365_linked"}});
  kv.section("Calendar");
  add_text_rows(kv, doc,
                {{"active", "/calendar/active"}, {"state", "/calendar/state"}});
  return kv.render();
}

std::string render_sync(dom::element doc) {
  kv_block kv;
  kv.section("Calendar sync");
  add_text_rows(kv, doc,
                {{"state", "/state"},
                 {"progress done", "/progress/done"},
                 {"progress total", "/progress/total"},
                 {"office365 calendar", "/office365_calendar_id"},
                 {"last sync", "/last_sync"},
                 {"last error", "/last_error"},
                 {"alert", "/alert"},
                 {"subscription", "/subscription_id"},
                 {"subscription expires", "/subscription_expires"},
                 {"outbox", "/outbox"},
                 {"inbox", "/inbox"}});
  // The ids an operator quotes to Microsoft about the failed call.
  if (at(doc, "/last_graph_failure").is_object()) {
    kv.section("Last failed Graph call");
    add_text_rows(
        kv, doc,
        {{"at", "/last_graph_failure/at"},
         {"status", "/last_graph_failure/status"},
         {"code", "/last_graph_failure/code"},
         {"client-request-id", "/last_graph_failure/client_request_id"},
         {"request-id", "/last_graph_failure/request_id"},
         {"date", "/last_graph_failure/date"}});
  }
  kv.section("To Office 365");
  add_text_rows(kv, doc,
                {{"created", "/to_office365/created"},
                 {"updated", "/to_office365/updated"},
                 {"deleted", "/to_office365/deleted"}});
  kv.section("From Office 365");
  add_text_rows(kv, doc,
                {{"created", "/from_office365/created"},
                 {"updated", "/from_office365/updated"},
                 {"deleted", "/from_office365/deleted"}});
  std::string out = kv.render();
  if (text(doc, "/state") == "held")
    out += "\nheld by the mass-delete guard: approve-deletes USER lets it "
           "apply its deletions once\n";
  if (text(doc, "/state") == "error" && text(doc, "/alert") != "-")
    out += "\nOffice 365 blocks this user's sync (" + text(doc, "/alert")
           + "): every change is kept and sent once it lets the sync in\n";
  // Events Office 365 refuses for good: they stay out until edited.
  table skipped({{"SKIPPED EVENT", align::left},
                 {"AT", align::left},
                 {"STATUS", align::right},
                 {"CODE", align::left},
                 {"MESSAGE", align::left, title_width * 2}});
  dom::array list;
  if (!doc["skipped"].get_array().get(list))
    for (dom::element k : list)
      skipped.add_row({text(k, "/event"), text(k, "/at"), text(k, "/status"),
                       text(k, "/code"), text(k, "/message")});
  if (!skipped.empty())
    out += "\n" + skipped.render();
  return out;
}

std::string render_check(dom::element doc, const people& who) {
  table users({{"USER", align::left},
               {"STATE", align::left},
               {"CRM", align::right},
               {"OFFICE 365", align::right},
               {"PENDING", align::right},
               {"DIFFERENCES", align::right},
               {"ERROR", align::left}});
  table diffs({{"USER", align::left},
               {"KIND", align::left},
               {"CRM EVENT", align::left},
               {"DETAIL", align::left, title_width * 2}});
  dom::array list;
  if (!doc["users"].get_array().get(list))
    for (dom::element u : list) {
      dom::array d;
      size_t n = 0;
      if (!u["differences"].get_array().get(d))
        for (dom::element x : d) {
          ++n;
          diffs.add_row({who(text(u, "/user")), text(x, "/kind"),
                         text(x, "/crm_event"), text(x, "/detail")});
        }
      users.add_row({who(text(u, "/user")), text(u, "/state"),
                     text(u, "/crm_events"), text(u, "/office365_events"),
                     text(u, "/pending"), std::to_string(n),
                     text(u, "/error")});
    }
  std::string out = users.empty() ? "no synced users\n" : users.render();
  if (!diffs.empty())
    out += "\n" + diffs.render();
  else
    out += "converged: no differences\n";
  return out;
}

std::string render_cluster(dom::element doc) {
  kv_block kv;
  add_text_rows(kv, doc,
                {{"this node", "/node_id"}, {"shard count", "/shard_count"}});
  std::string out = kv.render();
  dom::array members;
  if (doc["members"].get_array().get(members) == simdjson::SUCCESS) {
    table t({{"ID", align::left},
             {"CLUSTER ADDRESS", align::left},
             {"HTTP", align::left},
             {"UP", align::left},
             {"SELF", align::left},
             {"SHARDS", align::right}});
    for (dom::element m : members) {
      bool self = false;
      if (m["self"].get_bool().get(self) != simdjson::SUCCESS)
        self = false;
      t.add_row({text(m, "/id"), text(m, "/cluster_address"),
                 text(m, "/http_url"), text(m, "/up"), self ? "*" : "",
                 text(m, "/shards")});
    }
    out += '\n';
    out += t.empty() ? std::string("no members\n") : t.render();
  }
  return out;
}

std::vector<shard_run>
shard_runs(std::vector<std::tuple<std::uint64_t, std::string, bool>> shards) {
  std::sort(shards.begin(), shards.end());
  std::vector<shard_run> runs;
  for (auto& [n, node, moved] : shards) {
    if (!runs.empty() && !moved && !runs.back().moved
        && runs.back().node == node && runs.back().last + 1 == n) {
      runs.back().last = n;
      continue;
    }
    runs.push_back(shard_run{n, n, node, moved});
  }
  return runs;
}

namespace {

/// The shard map with replication (ADR 0008): one row per run of
/// consecutive shards with the same primary, followers and epoch, and the
/// answering node's view of each run (its role, and the lag of its
/// followers where it is the primary). t15-repl.
std::string render_replicated_shards(dom::element doc, dom::array list) {
  struct row {
    std::uint64_t first = 0, last = 0;
    std::string node, followers, epoch, role, lag;
  };
  std::vector<row> rows;
  std::map<std::string, std::uint64_t> per_node;
  for (dom::element e : list) {
    std::uint64_t n = 0;
    if (!unsigned_at(e, "/shard", n))
      continue;
    row r;
    r.first = r.last = n;
    r.node = text(e, "/node");
    dom::array fl;
    if (e["followers"].get_array().get(fl) == simdjson::SUCCESS)
      for (dom::element f : fl) {
        std::string_view id;
        if (f.get_string().get(id) == simdjson::SUCCESS)
          r.followers += (r.followers.empty() ? "" : ",") + std::string{id};
      }
    if (r.followers.empty())
      r.followers = "-";
    r.epoch = text(e, "/epoch");
    r.role = text(e, "/role");
    std::uint64_t lag = 0;
    r.lag = unsigned_at(e, "/lag", lag) ? std::to_string(lag) : "";
    per_node[r.node] += 1;
    if (!rows.empty()) {
      auto& b = rows.back();
      if (b.last + 1 == n && b.node == r.node && b.followers == r.followers
          && b.epoch == r.epoch && b.role == r.role) {
        b.last = n;
        if (!r.lag.empty())
          b.lag = std::to_string(std::max<std::uint64_t>(
              lag, b.lag.empty() ? 0 : std::stoull(b.lag)));
        continue;
      }
    }
    rows.push_back(std::move(r));
  }
  table t({{"SHARDS", align::right},
           {"PRIMARY", align::left},
           {"FOLLOWERS", align::left},
           {"EPOCH", align::right},
           {"HERE", align::left},
           {"LAG", align::right}});
  for (auto& r : rows) {
    std::string range = std::to_string(r.first);
    if (r.last != r.first)
      range += "-" + std::to_string(r.last);
    t.add_row({range, r.node, r.followers, r.epoch, r.role, r.lag});
  }
  kv_block kv;
  kv.add("shard count", text(doc, "/shard_count"));
  std::string nodes;
  for (auto& [node, n] : per_node)
    nodes += (nodes.empty() ? "" : ", ") + node + " " + std::to_string(n);
  kv.add("per primary", nodes.empty() ? "-" : nodes);
  std::string out = kv.render();
  out += '\n';
  out += t.empty() ? std::string("no shards\n") : t.render();
  out += "HERE: the answering node's role; LAG: batches its followers miss "
         "(shown where it is the primary)\n";
  return out;
}

} // namespace

std::string render_shards(dom::element doc) {
  dom::array list;
  if (doc["shards"].get_array().get(list) != simdjson::SUCCESS)
    return "no shard map in the answer\n";
  for (dom::element e : list) {
    int64_t epoch = 0;
    if (at(e, "/epoch").get_int64().get(epoch) == simdjson::SUCCESS)
      return render_replicated_shards(doc, list);
    break;
  }
  std::vector<std::tuple<std::uint64_t, std::string, bool>> shards;
  for (dom::element e : list) {
    std::uint64_t n = 0;
    if (!unsigned_at(e, "/shard", n))
      continue;
    bool moved = false;
    if (e["moved"].get_bool().get(moved) != simdjson::SUCCESS)
      moved = false;
    shards.emplace_back(n, text(e, "/node"), moved);
  }
  auto runs = shard_runs(shards);
  table t({{"SHARDS", align::right},
           {"NODE", align::left},
           {"MOVED", align::left}});
  std::map<std::string, std::uint64_t> per_node;
  bool any_moved = false;
  for (auto& r : runs) {
    std::string range = std::to_string(r.first);
    if (r.last != r.first)
      range += "-" + std::to_string(r.last);
    t.add_row({range, r.node, r.moved ? "*" : ""});
    per_node[r.node] += r.last - r.first + 1;
    any_moved = any_moved || r.moved;
  }
  std::string out;
  kv_block kv;
  kv.add("shard count", text(doc, "/shard_count"));
  std::string nodes;
  for (auto& [node, n] : per_node)
    nodes += (nodes.empty() ? "" : ", ") + node + " " + std::to_string(n);
  kv.add("per node", nodes.empty() ? "-" : nodes);
  out += kv.render();
  out += '\n';
  out += t.empty() ? std::string("no shards\n") : t.render();
  if (any_moved)
    out += "* moved away from the node the hash placed it on\n";
  return out;
}

std::string render_shard_move(dom::element doc) {
  return "shard " + text(doc, "/shard") + ": " + text(doc, "/from") + " -> "
         + text(doc, "/to") + " (" + text(doc, "/state") + ")\n";
}

std::string render_actor(dom::element doc) {
  kv_block kv;
  kv.section("Actor");
  add_text_rows(kv, doc,
                {{"kind", "/kind"},
                 {"id", "/id"},
                 {"tenant", "/tenant"},
                 {"node", "/node"},
                 {"activated at", "/activated_at"},
                 {"last message at", "/last_message_at"}});
  kv.add("idle", formatted(doc, "/idle_ms", format_millis));
  add_text_rows(kv, doc,
                {{"messages", "/messages"},
                 {"queue length", "/queue"},
                 {"stopping", "/stopping"}});
  dom::object run;
  if (doc["sync_run"].get_object().get(run) == simdjson::SUCCESS) {
    kv.section("Sync run");
    add_text_rows(kv, doc,
                  {{"running", "/sync_run/running"},
                   {"queued", "/sync_run/queued"},
                   {"resync pending", "/sync_run/resync_pending"},
                   {"failed runs", "/sync_run/failed_runs"}});
  }
  dom::object summary;
  if (doc["summary"].get_object().get(summary) == simdjson::SUCCESS
      && summary.size() > 0) {
    kv.section("Summary");
    for (dom::key_value_pair f : summary) {
      std::string key(f.key);
      std::replace(key.begin(), key.end(), '_', ' ');
      dom::object inner;
      if (f.value.get_object().get(inner) == simdjson::SUCCESS) {
        for (dom::key_value_pair g : inner)
          kv.add(key + " " + std::string(g.key),
                 json_text(maybe_element(dom::element(g.value))));
        continue;
      }
      kv.add(key, json_text(maybe_element(dom::element(f.value))));
    }
  }
  std::string out = kv.render();
  dom::array timers;
  if (doc["timers"].get_array().get(timers) == simdjson::SUCCESS) {
    table t({{"TIMER", align::left},
             {"AT", align::left},
             {"FOR", align::left, title_width * 2}});
    for (dom::element e : timers)
      t.add_row({text(e, "/name"), text(e, "/at"), text(e, "/what")});
    out += '\n';
    out += t.empty() ? std::string("no pending timers\n") : t.render();
  }
  return out;
}

std::string render_progress(const progress_view& p, std::size_t bar_width) {
  std::string out;
  if (bar_width > 0) {
    std::size_t filled = 0;
    if (p.total > 0)
      filled = static_cast<std::size_t>(std::min<std::uint64_t>(p.done, p.total)
                                        * bar_width / p.total);
    out += '[';
    out.append(filled, '#');
    out.append(bar_width - filled, '-');
    out += "]  ";
  }
  out += std::to_string(p.done) + "/" + std::to_string(p.total);
  if (p.total > 0)
    out += "  "
           + std::to_string(std::min<std::uint64_t>(p.done, p.total) * 100
                            / p.total)
           + "%";
  out += "  " + sanitize(p.state);
  if (p.rate >= 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "  %.1f/s", p.rate);
    out += buf;
  }
  if (!p.error.empty())
    out += "  error: " + truncate(sanitize(p.error), 120);
  return out;
}

table holds_table() {
  return table({{"USER", align::left},
                {"EMAIL", align::left},
                {"STATE", align::left},
                {"SINCE", align::left},
                {"REASON", align::left, title_width * 2}});
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

void add_tenant_rows(dom::array items, table& out, const people&) {
  for (dom::element t : items)
    out.add_row({text(t, "/id"), text(t, "/name"), text(t, "/edition"),
                 text(t, "/users"), text(t, "/created_at")});
}

void add_event_rows(dom::array items, table& out, const people&) {
  for (dom::element e : items)
    out.add_row({text(e, "/id"), text(e, "/start"), text(e, "/end"),
                 text(e, "/title"), text(e, "/origin"), text(e, "/version")});
}

table audit_table() {
  return table({{"AT", align::left},
                {"ACTOR", align::left},
                {"ACTION", align::left},
                {"DETAIL", align::left, title_width * 2}});
}

std::string people::operator()(const std::string& id) const {
  auto found = email_of.find(id);
  if (found == email_of.end() || found->second.empty())
    return id;
  return wide ? found->second + " (" + id + ")" : found->second;
}

table invites_table() {
  return table({{"ID", align::left},
                {"EMAIL", align::left},
                {"STATUS", align::left},
                {"INVITED BY", align::left},
                {"USER", align::left},
                {"EXPIRES", align::left}});
}

table join_requests_table() {
  return table({{"ID", align::left},
                {"EMAIL", align::left},
                {"STATUS", align::left},
                {"APPROVED BY", align::left},
                {"USER", align::left},
                {"CREATED", align::left}});
}

void add_audit_rows(dom::array items, table& out, const people& who) {
  for (dom::element a : items)
    out.add_row({text(a, "/at"), who(text(a, "/actor")), text(a, "/action"),
                 text(a, "/detail")});
}

void add_invite_rows(dom::array items, table& out, const people& who) {
  for (dom::element i : items)
    out.add_row({text(i, "/id"), text(i, "/email"), text(i, "/status"),
                 who(text(i, "/invited_by")), who(text(i, "/user")),
                 text(i, "/expires")});
}

void add_join_request_rows(dom::array items, table& out, const people& who) {
  for (dom::element j : items)
    out.add_row({text(j, "/id"), text(j, "/email"), text(j, "/status"),
                 who(text(j, "/approved_by")), who(text(j, "/user")),
                 text(j, "/created")});
}

table conflicts_table() {
  return table({{"AT", align::left},
                {"USER", align::left},
                {"EVENT", align::left},
                {"WINNER", align::left},
                {"KEPT", align::left, title_width},
                {"LOST", align::left, title_width}});
}

void add_conflict_rows(dom::array items, table& out, const people& who) {
  for (dom::element c : items)
    out.add_row({text(c, "/at"), who(text(c, "/user")), text(c, "/event"),
                 text(c, "/winner"), text(c, "/kept"), text(c, "/lost")});
}

} // namespace crmsync::ctl
