#include "ctl/commands.hpp"

#include "ctl/format.hpp"
#include "ctl/render.hpp"
#include "http/client.hpp"
#include "storage/backup.hpp"

#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

namespace crmsync::ctl {

namespace dom = simdjson::dom;

namespace {

const std::string api_root = "/admin/v1";

using query = std::vector<std::pair<std::string, std::string>>;

void complain(const std::string& message) {
  std::cerr << "crmsyncctl: " << message << '\n';
}

// Prints a body as received, ending the output with a newline.
void print_raw(const std::string& body) {
  std::cout << body;
  if (body.empty() || body.back() != '\n')
    std::cout << '\n';
}

// One connection to the node for the duration of a command.
class session {
public:
  explicit session(const global_options& g) : options_(g) {}

  /// How long one answer may take (before the first request).
  void set_timeout(std::chrono::milliseconds t) {
    timeout_ = t;
  }

  /// GETs `target`; returns exit_ok with the body of a 2xx answer, or an
  /// exit code after telling the user what went wrong.
  int get(const std::string& target, std::string& body) {
    return send("GET", target, body);
  }

  /// Sends `method` to `target` with an optional JSON body; like get().
  /// `quiet`: failures are not reported (a lookup the command can do
  /// without).
  int send(const std::string& method, const std::string& target,
           std::string& body, const std::string& json_body = {},
           bool quiet = false) {
    http::header_list headers{
        {"Authorization", "Bearer " + options_.token},
        {"Accept", "application/json"},
        {"User-Agent", "crmsyncctl"},
    };
    if (!json_body.empty())
      headers.emplace_back("Content-Type", "application/json");
    http::client_response res;
    int rc = exchange(method, target, json_body, headers, res, quiet);
    if (rc == exit_ok)
      body = std::move(res.body);
    return rc;
  }

  /// GETs `target` and keeps the whole answer (headers and bytes).
  int get_raw(const std::string& target, http::client_response& res) {
    return exchange("GET", target, {},
                    {{"Authorization", "Bearer " + options_.token},
                     {"User-Agent", "crmsyncctl"}},
                    res, false);
  }

  /// One request; exit_ok for a 2xx answer in `res`, else an exit code
  /// after telling the user (unless `quiet`).
  int exchange(const std::string& method, const std::string& target,
               const std::string& body, const http::header_list& headers,
               http::client_response& res, bool quiet) {
    if (!client_) {
      std::string host, err;
      std::uint16_t port = 0;
      if (!http::parse_base_url(options_.node, host, port, err)) {
        complain("bad --node: " + err);
        return exit_usage;
      }
      client_.emplace(std::move(host), port, timeout_);
    }
    std::string err;
    if (!client_->request(method, target, body, headers, res, err)) {
      if (quiet)
        return exit_unreachable;
      complain("cannot reach node at " + options_.node + ": " + err);
      return exit_unreachable;
    }
    if (res.status >= 200 && res.status < 300)
      return exit_ok;
    if (quiet)
      return exit_failure;
    return report_failure(method + " " + target, res);
  }

  /// get() and parse; the element lives until the next call.
  int get_json(const std::string& target, std::string& body, dom::element& doc,
               bool quiet = false) {
    if (int rc = send("GET", target, body, {}, quiet); rc != exit_ok)
      return rc;
    return parse(target, body, doc);
  }

  /// Parses a body from send(); the element lives until the next call.
  int parse(const std::string& target, const std::string& body,
            dom::element& doc) {
    std::string err;
    if (!parse_json(parser_, body, doc, err)) {
      complain("the node sent a response that is not valid JSON (" + err
               + ") for " + target);
      return exit_failure;
    }
    return exit_ok;
  }

private:
  std::chrono::milliseconds timeout_ = std::chrono::seconds(10);
  static int report_failure(const std::string& target,
                            const http::client_response& res) {
    api_error e = parse_api_error(res.body);
    if (res.status == 401) {
      complain("the node refused the admin token (401); pass --token or set "
               "CRMSYNC_ADMIN_TOKEN");
      return exit_unauthorized;
    }
    if (res.status == 404) {
      if (e.message.rfind("no such route", 0) == 0)
        complain("the node does not know " + target
                 + ": it runs an older crmsyncd without this command");
      else
        complain("not found: " + (e.message.empty() ? target : e.message));
      return exit_not_found;
    }
    std::string detail = e.message.empty() ? "(no error message)" : e.message;
    if (!e.code.empty() || !e.field.empty()) {
      detail += " [";
      if (!e.code.empty())
        detail += e.code;
      if (!e.field.empty())
        detail += (e.code.empty() ? "field " : ", field ") + e.field;
      detail += ']';
    }
    complain("the node answered HTTP " + std::to_string(res.status) + " for "
             + target + ": " + detail);
    return exit_failure;
  }

  const global_options& options_;
  std::optional<http::client> client_;
  dom::parser parser_;
};

int unexpected(const std::string& what, const std::string& target) {
  complain("unexpected response to GET " + target + ": " + what);
  return exit_failure;
}

// Commands that fetch one object and print it.
template <class Render>
int show_one(const global_options& g, const std::string& target,
             Render render) {
  session s(g);
  std::string body;
  dom::element doc;
  if (int rc = s.get_json(target, body, doc); rc != exit_ok)
    return rc;
  if (!doc.is_object())
    return unexpected("expected a JSON object", target);
  if (g.json)
    print_raw(body);
  else
    std::cout << render(doc);
  return exit_ok;
}

// Describes one paged listing (tenants, events).
struct listing {
  std::string path;
  query params; // fixed parameters; limit and cursor are added here
  table rows;
  void (*add_rows)(dom::array, table&, const people&);
  const char* empty_text;
  std::string org = {}; ///< whose people name the user ids, if any
};

// The people of `org` (every page of its users), so tables can name users
// by e-mail; an organization that cannot be read leaves the ids as they are
// (the command's own request reports why).
people load_people(session& s, const global_options& g,
                   const std::string& org) {
  people who;
  who.wide = g.wide;
  std::string cursor;
  for (int pages = 0; pages < 1000; ++pages) {
    std::string body;
    dom::element doc;
    auto target = with_query("/api/v1/orgs/" + url_encode(org) + "/users",
                             {{"limit", "1000"}, {"cursor", cursor}});
    if (s.get_json(target, body, doc, true) != exit_ok)
      break;
    dom::array items;
    if (doc["items"].get_array().get(items) != simdjson::SUCCESS)
      break;
    for (dom::element u : items) {
      std::string_view id, email;
      if (!u["id"].get_string().get(id) && !u["email"].get_string().get(email))
        who.email_of[std::string(id)] = std::string(email);
    }
    std::string_view next;
    if (doc["next_cursor"].get_string().get(next) != simdjson::SUCCESS
        || next.empty() || next == cursor)
      break;
    cursor = std::string(next);
  }
  return who;
}

// Fetches one page or, with --all, every page by following next_cursor.
int show_list(const global_options& g, const list_options& l, listing spec) {
  session s(g);
  people who;
  if (!spec.org.empty() && !g.json)
    who = load_people(s, g, spec.org);
  std::vector<std::string> json_items;
  std::string cursor;
  bool more = false;
  for (;;) {
    query params = spec.params;
    if (l.limit)
      params.emplace_back("limit", std::to_string(*l.limit));
    params.emplace_back("cursor", cursor);
    std::string target = with_query(spec.path, params);

    std::string body;
    dom::element doc;
    if (int rc = s.get_json(target, body, doc); rc != exit_ok)
      return rc;
    dom::array items;
    if (doc["items"].get_array().get(items) != simdjson::SUCCESS)
      return unexpected("no \"items\" array", target);
    if (g.json && !l.all) {
      print_raw(body);
      return exit_ok;
    }
    if (g.json) {
      for (dom::element item : items)
        json_items.push_back(simdjson::to_string(item));
    } else {
      spec.add_rows(items, spec.rows, who);
    }

    std::string_view next;
    if (doc["next_cursor"].get_string().get(next) != simdjson::SUCCESS
        || next.empty())
      break;
    if (!l.all) {
      more = true;
      break;
    }
    if (next == cursor)
      return unexpected("next_cursor did not advance", target);
    cursor = std::string(next);
  }

  if (g.json) {
    // --all --json: every page's items in one document.
    std::string out = "{\"items\":[";
    for (std::size_t i = 0; i < json_items.size(); ++i) {
      if (i > 0)
        out += ',';
      out += json_items[i];
    }
    out += "],\"next_cursor\":null}";
    print_raw(out);
    return exit_ok;
  }
  if (spec.rows.empty())
    std::cout << spec.empty_text << '\n';
  else
    std::cout << spec.rows.render();
  if (more)
    std::cerr << "(more results on the node; use --all to list them all)\n";
  return exit_ok;
}

} // namespace

int cmd_status(const global_options& g) {
  return show_one(g, api_root + "/status", render_status);
}

int cmd_actors(const global_options& g) {
  return show_one(g, api_root + "/actors", render_actors);
}

int cmd_tenants(const global_options& g, const list_options& l) {
  return show_list(g, l,
                   listing{api_root + "/tenants",
                           {},
                           tenants_table(),
                           add_tenant_rows,
                           "no tenants"});
}

int cmd_tenant(const global_options& g, const std::string& id) {
  return show_one(g, api_root + "/tenants/" + url_encode(id), render_tenant);
}

int cmd_user(const global_options& g, const std::string& id) {
  return show_one(g, api_root + "/users/" + url_encode(id), render_user);
}

int cmd_events(const global_options& g, const std::string& user,
               const list_options& l) {
  return show_list(g, l,
                   listing{api_root + "/users/" + url_encode(user) + "/events",
                           {{"from", l.from}, {"to", l.to}},
                           events_table(),
                           add_event_rows,
                           "no events"});
}

int cmd_audit(const global_options& g, const std::string& org,
              const list_options& l) {
  return show_list(g, l,
                   listing{"/api/v1/orgs/" + url_encode(org) + "/audit",
                           {},
                           audit_table(),
                           add_audit_rows,
                           "no audit entries",
                           org});
}

int cmd_invites(const global_options& g, const std::string& org) {
  return show_list(g, list_options{},
                   listing{"/api/v1/orgs/" + url_encode(org) + "/invites",
                           {},
                           invites_table(),
                           add_invite_rows,
                           "no invitations",
                           org});
}

int cmd_join_requests(const global_options& g, const std::string& org) {
  return show_list(g, list_options{},
                   listing{"/api/v1/orgs/" + url_encode(org) + "/join-requests",
                           {},
                           join_requests_table(),
                           add_join_request_rows,
                           "no join requests",
                           org});
}

int cmd_conflicts(const global_options& g, const std::string& org,
                  const list_options& l) {
  return show_list(g, l,
                   listing{api_root + "/orgs/" + url_encode(org) + "/conflicts",
                           {},
                           conflicts_table(),
                           add_conflict_rows,
                           "no conflicts",
                           org});
}

int cmd_approve_deletes(const global_options& g, const std::string& user) {
  session s(g);
  std::string body;
  auto target
      = api_root + "/users/" + url_encode(user) + "/sync/approve-deletes";
  if (int rc = s.send("POST", target, body); rc != exit_ok)
    return rc;
  if (g.json)
    print_raw(body);
  else
    std::cout << "approved: the held sync of " << user
              << " runs once more with its deletions\n";
  return exit_ok;
}

int cmd_sync(const global_options& g, const std::string& user) {
  return show_one(g, api_root + "/users/" + url_encode(user) + "/sync",
                  render_sync);
}

int cmd_check(const global_options& g, const std::string& org) {
  auto target = api_root + "/orgs/" + url_encode(org) + "/check";
  session s(g);
  // Before the check: a parse invalidates the previous document.
  people who;
  if (!g.json)
    who = load_people(s, g, org);
  std::string body;
  dom::element doc;
  if (int rc = s.get_json(target, body, doc); rc != exit_ok)
    return rc;
  uint64_t differences = 0;
  if (doc["differences"].get_uint64().get(differences))
    return unexpected("no \"differences\" count", target);
  if (g.json)
    print_raw(body);
  else
    std::cout << render_check(doc, who);
  return differences == 0 ? exit_ok : exit_failure;
}

int cmd_cluster(const global_options& g) {
  return show_one(g, api_root + "/cluster", render_cluster);
}

int cmd_shards(const global_options& g) {
  return show_one(g, api_root + "/shards", render_shards);
}

int cmd_move_shard(const global_options& g, std::uint64_t shard,
                   const std::string& node) {
  session s(g);
  std::string body;
  std::string request = "{\"to\":\"";
  for (char c : node) {
    if (c == '"' || c == '\\')
      request += '\\';
    request += c;
  }
  request += "\"}";
  auto target = api_root + "/shards/" + std::to_string(shard) + "/move";
  if (int rc = s.send("POST", target, body, request); rc != exit_ok)
    return rc;
  dom::element doc;
  if (int rc = s.parse("POST " + target, body, doc); rc != exit_ok)
    return rc;
  if (g.json)
    print_raw(body);
  else
    std::cout << render_shard_move(doc);
  return exit_ok;
}

int cmd_drain(const global_options& g, const std::string& node, bool cancel,
              bool no_wait) {
  session s(g);
  std::string body;
  auto target = api_root + "/cluster/members/" + url_encode(node) + "/drain";
  if (int rc = s.send(cancel ? "DELETE" : "POST", target, body); rc != exit_ok)
    return rc;
  std::string last;
  for (;;) {
    dom::element doc;
    if (int rc = s.parse(target, body, doc); rc != exit_ok)
      return rc;
    bool draining = false;
    bool done = false;
    doc["draining"].get_bool().get(draining);
    doc["done"].get_bool().get(done);
    if (g.json) {
      print_raw(body);
    } else {
      auto line
          = node + ": "
            + (draining
                   ? json_text(doc.at_pointer("/shards_left")) + " shards left"
                         + (done ? ", drained: it may be removed" : "")
                   : std::string{"not drained"})
            + "\n";
      if (line != last)
        std::cout << line << std::flush;
      last = line;
    }
    if (cancel || no_wait || done || !draining)
      return exit_ok;
    std::this_thread::sleep_for(std::chrono::seconds(1));
    if (int rc = s.get(target, body); rc != exit_ok)
      return rc;
  }
}

int cmd_export(const global_options& g, const std::string& org) {
  session s(g);
  std::string body;
  if (int rc = s.get(api_root + "/orgs/" + url_encode(org) + "/export", body);
      rc != exit_ok)
    return rc;
  // A body cut short has no "end" line: the node stopped half-way.
  if (body.find("{\"kind\":\"end\"") == std::string::npos) {
    complain("the export of " + org + " ended before its last line");
    return exit_failure;
  }
  std::cout << body;
  return exit_ok;
}

namespace {

/// Where a backup goes: DIR must not exist yet, or be an empty directory.
bool fresh_backup_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec))
    return fs::create_directories(dir + "/" + storage::backup_data_dir, ec);
  if (!fs::is_directory(dir, ec) || !fs::is_empty(dir, ec))
    return false;
  return fs::create_directories(dir + "/" + storage::backup_data_dir, ec);
}

/// Copies one file of the node's backup `id` into `to`, piece by piece.
int copy_backup_file(session& s, const std::string& id, storage::backup_file& f,
                     const std::string& to) {
  std::ofstream out{to, std::ios::binary | std::ios::trunc};
  if (!out) {
    complain("cannot write " + to);
    return exit_failure;
  }
  uint64_t done = 0;
  do {
    http::client_response res;
    auto target = api_root + "/backups/" + url_encode(id) + "/files/"
                  + url_encode(f.name) + "?offset=" + std::to_string(done);
    if (int rc = s.get_raw(target, res); rc != exit_ok)
      return rc;
    if (res.header("X-Crmsync-File-Bytes") != std::to_string(f.bytes)) {
      complain(f.name + " changed size on the node during the copy");
      return exit_failure;
    }
    if (res.body.empty() && done < f.bytes) {
      complain("the node sent no bytes of " + f.name + " at offset "
               + std::to_string(done));
      return exit_failure;
    }
    out.write(res.body.data(), static_cast<std::streamsize>(res.body.size()));
    done += res.body.size();
  } while (done < f.bytes);
  out.flush();
  if (!out) {
    complain("cannot write " + to);
    return exit_failure;
  }
  out.close();
  std::string err;
  if (!storage::sha256_file_hex(to, f.sha256, err)) {
    complain(err);
    return exit_failure;
  }
  return exit_ok;
}

} // namespace

int cmd_backup(const global_options& g, const std::string& dir) {
  if (!fresh_backup_dir(dir)) {
    complain(dir
             + " exists and is not an empty directory (or cannot be "
               "created): a backup goes into a new one");
    return exit_usage;
  }
  session s(g);
  // The node flushes its memtables before the checkpoint: give it time.
  s.set_timeout(std::chrono::minutes(5));
  std::string body;
  dom::element doc;
  const auto target = api_root + "/backups";
  if (int rc = s.send("POST", target, body, "{}"); rc != exit_ok)
    return rc;
  if (int rc = s.parse("POST " + target, body, doc); rc != exit_ok)
    return rc;
  storage::backup_manifest m;
  std::string_view id, node, created;
  dom::array files;
  if (doc["id"].get_string().get(id) != simdjson::SUCCESS
      || doc["node"].get_string().get(node) != simdjson::SUCCESS
      || doc["created_at"].get_string().get(created) != simdjson::SUCCESS
      || doc["sequence"].get_uint64().get(m.sequence) != simdjson::SUCCESS
      || doc["files"].get_array().get(files) != simdjson::SUCCESS)
    return unexpected("no id, node, created_at, sequence or files",
                      "POST " + target);
  m.id = std::string{id};
  m.node = std::string{node};
  m.created_at = std::string{created};
  for (dom::element f : files) {
    storage::backup_file bf;
    std::string_view name;
    if (f["name"].get_string().get(name) != simdjson::SUCCESS
        || f["bytes"].get_uint64().get(bf.bytes) != simdjson::SUCCESS
        || !storage::valid_backup_file_name(name))
      return unexpected("a file without a valid name or size",
                        "POST " + target);
    bf.name = std::string{name};
    m.files.push_back(std::move(bf));
  }
  int rc = exit_ok;
  uint64_t bytes = 0;
  for (auto& f : m.files) {
    rc = copy_backup_file(s, m.id, f,
                          dir + "/" + storage::backup_data_dir + "/" + f.name);
    if (rc != exit_ok)
      break;
    bytes += f.bytes;
  }
  if (rc == exit_ok) {
    // The manifest last: a directory without one is no backup.
    std::ofstream out{dir + "/" + storage::manifest_name,
                      std::ios::binary | std::ios::trunc};
    out << storage::render_manifest(m);
    out.flush();
    if (!out) {
      complain("cannot write the manifest in " + dir);
      rc = exit_failure;
    }
  }
  // The node's copy goes either way (it would expire after an hour).
  std::string ignored;
  s.send("DELETE", target + "/" + url_encode(m.id), ignored, {}, true);
  if (rc != exit_ok) {
    complain("the backup in " + dir + " is incomplete; delete it");
    return rc;
  }
  std::cout << "backup " << m.id << " of node " << m.node << ": "
            << m.files.size() << " files, " << bytes << " bytes, sequence "
            << m.sequence << ", in " << dir << '\n';
  return exit_ok;
}

int cmd_delete_org(const global_options& g, const std::string& org,
                   const std::string& confirm) {
  session s(g);
  std::string body;
  auto target = api_root + "/orgs/" + url_encode(org)
                + "?confirm=" + url_encode(confirm);
  if (int rc = s.send("DELETE", target, body); rc != exit_ok)
    return rc;
  dom::element doc;
  if (int rc = s.parse("DELETE " + target, body, doc); rc != exit_ok)
    return rc;
  if (g.json) {
    print_raw(body);
    return exit_ok;
  }
  std::uint64_t rows = 0;
  std::string_view teardown;
  if (doc["rows"].get_uint64().get(rows) != simdjson::SUCCESS
      || doc["office365_teardown"].get_string().get(teardown)
             != simdjson::SUCCESS)
    return unexpected("no \"rows\" or \"office365_teardown\"",
                      "DELETE " + target);
  std::cout << "deleted organization " << org << ": " << rows
            << " rows removed; Office 365 teardown " << teardown << '\n';
  return exit_ok;
}

namespace {

std::string actor_path(const std::string& kind, const std::string& id) {
  return api_root + "/actors/" + url_encode(kind) + "/" + url_encode(id);
}

std::atomic<bool> interrupted{false};

extern "C" void on_interrupt(int) {
  interrupted = true;
}

// SIGINT stops the follow loop, not the console, for as long as it lives.
class interrupt_guard {
public:
  interrupt_guard() {
    interrupted = false;
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~interrupt_guard() {
    sigaction(SIGINT, &old_, nullptr);
  }

private:
  struct sigaction old_ {};
};

// Polls the user's sync status until it settles: active (with a last sync
// after `since_ms`, for a resync), held, error or disabled.
int follow(const global_options& g, session& s, const std::string& user,
           std::int64_t since_ms) {
  using clock = std::chrono::steady_clock;
  interrupt_guard guard;
  const bool tty = isatty(STDOUT_FILENO) == 1;
  auto target = api_root + "/users/" + url_encode(user) + "/sync";
  auto started = clock::now();
  std::uint64_t first_done = 0;
  bool have_first = false;
  std::string last_line;
  for (;;) {
    std::string body;
    dom::element doc;
    if (int rc = s.get_json(target, body, doc); rc != exit_ok) {
      if (tty && !last_line.empty())
        std::cout << '\n';
      return rc;
    }
    progress_view p;
    std::string_view sv;
    if (doc["state"].get_string().get(sv) == simdjson::SUCCESS)
      p.state = std::string(sv);
    if (doc.at_pointer("/progress/done").get_uint64().get(p.done))
      p.done = 0;
    if (doc.at_pointer("/progress/total").get_uint64().get(p.total))
      p.total = 0;
    if (doc["last_error"].get_string().get(sv) == simdjson::SUCCESS)
      p.error = std::string(sv);
    std::int64_t last_sync = 0;
    if (doc["last_sync"].get_string().get(sv) == simdjson::SUCCESS)
      parse_rfc3339_ms(sv, last_sync);
    if (!have_first) {
      first_done = p.done;
      have_first = true;
    }
    auto elapsed = std::chrono::duration<double>(clock::now() - started);
    if (elapsed.count() >= 1.0 && p.done >= first_done)
      p.rate = static_cast<double>(p.done - first_done) / elapsed.count();
    if (tty) {
      std::cout << "\r\x1b[K" << render_progress(p, 30) << std::flush;
      last_line = "x";
    } else {
      // Plain lines: one per change, without the rate (it always moves).
      progress_view plain = p;
      plain.rate = -1;
      auto line = render_progress(plain, 0);
      if (line != last_line)
        std::cout << line << '\n' << std::flush;
      last_line = line;
    }
    bool settled
        = p.state == "held" || p.state == "error" || p.state == "disabled"
          || (p.state == "active" && (since_ms == 0 || last_sync >= since_ms));
    if (settled) {
      if (tty)
        std::cout << '\n';
      if (g.json)
        print_raw(body);
      std::cout << "sync of " << user << ": " << p.state << '\n';
      return p.state == "error" ? exit_failure : exit_ok;
    }
    for (int i = 0; i < 10 && !interrupted; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (interrupted) {
      if (tty)
        std::cout << '\n';
      std::cout << "stopped following; the sync goes on\n";
      return exit_ok;
    }
  }
}

} // namespace

int cmd_actor(const global_options& g, const std::string& kind,
              const std::string& id) {
  return show_one(g, actor_path(kind, id), render_actor);
}

int cmd_passivate(const global_options& g, const std::string& kind,
                  const std::string& id) {
  session s(g);
  std::string body;
  if (int rc = s.send("POST", actor_path(kind, id) + "/passivate", body);
      rc != exit_ok)
    return rc;
  if (g.json)
    print_raw(body);
  else
    std::cout << "passivating " << kind << " " << id << '\n';
  return exit_ok;
}

int cmd_resync(const global_options& g, const std::string& user,
               bool follow_it) {
  session s(g);
  std::string body;
  auto target = api_root + "/users/" + url_encode(user) + "/resync";
  if (int rc = s.send("POST", target, body); rc != exit_ok)
    return rc;
  dom::element doc;
  if (int rc = s.parse("POST " + target, body, doc); rc != exit_ok)
    return rc;
  std::string_view at;
  std::int64_t since = 0;
  if (doc["requested_at"].get_string().get(at) != simdjson::SUCCESS
      || !parse_rfc3339_ms(at, since))
    return unexpected("no \"requested_at\" time", "POST " + target);
  if (!follow_it) {
    if (g.json)
      print_raw(body);
    else
      std::cout << "resync of " << user << " requested at " << at
                << ": the next run reads the whole window again\n";
    return exit_ok;
  }
  std::cout << "resync of " << user << " requested at " << at << '\n';
  return follow(g, s, user, since);
}

int cmd_sync_follow(const global_options& g, const std::string& user) {
  session s(g);
  return follow(g, s, user, 0);
}

int cmd_holds(const global_options& g, const std::string& org) {
  session s(g);
  table t = holds_table();
  std::string cursor;
  for (;;) {
    auto target = with_query("/api/v1/orgs/" + url_encode(org) + "/users",
                             {{"limit", "1000"}, {"cursor", cursor}});
    std::string body;
    dom::element doc;
    if (int rc = s.get_json(target, body, doc); rc != exit_ok)
      return rc;
    dom::array items;
    if (doc["items"].get_array().get(items) != simdjson::SUCCESS)
      return unexpected("no \"items\" array", target);
    std::vector<std::pair<std::string, std::string>> users;
    for (dom::element u : items)
      users.emplace_back(json_text(u["id"]), json_text(u["email"]));
    std::string_view next;
    bool more = doc["next_cursor"].get_string().get(next) == simdjson::SUCCESS
                && !next.empty() && next != cursor;
    std::string next_cursor(more ? next : std::string_view{});
    for (auto& [id, email] : users) {
      std::string sbody;
      dom::element st;
      auto starget = api_root + "/users/" + url_encode(id) + "/sync";
      if (int rc = s.get_json(starget, sbody, st); rc != exit_ok)
        return rc;
      if (json_text(st["state"]) != "held")
        continue;
      t.add_row({id, email, "held", json_text(st["last_sync"]),
                 json_text(st["last_error"])});
    }
    if (!more)
      break;
    cursor = next_cursor;
  }
  if (t.empty()) {
    std::cout << "no syncs held by the mass-delete guard\n";
    return exit_ok;
  }
  std::cout << t.render()
            << "approve with: approve-deletes USER (applies the deletions "
               "once)\n";
  return exit_ok;
}

bool fetch_quietly(const global_options& g, const std::string& target,
                   std::string& body) {
  std::string host, err;
  std::uint16_t port = 0;
  if (!http::parse_base_url(g.node, host, port, err))
    return false;
  http::client c(std::move(host), port);
  http::header_list headers{
      {"Authorization", "Bearer " + g.token},
      {"Accept", "application/json"},
      {"User-Agent", "crmsyncctl"},
  };
  http::client_response res;
  if (!c.request("GET", target, "", headers, res, err) || res.status < 200
      || res.status >= 300)
    return false;
  body = std::move(res.body);
  return true;
}

} // namespace crmsync::ctl
