// crmsyncctl: the admin console of a crmsync node.
//
//   crmsyncctl [--node URL] [--token TOKEN | --token-file FILE] [--json]
//   COMMAND [ARGS] crmsyncctl [--node URL] [--token TOKEN] [--history FILE]
//   (console)
// Without --token (or CRMSYNC_ADMIN_TOKEN) the token is the first line of
// --token-file, data/admin.token by default (the node's default data dir).
//
// Parses a command line with CLI11 and hands over to ctl/commands.cpp.
// Without a command it starts the interactive console (ctl/console.cpp),
// which runs every line it reads through the same dispatch() below, so
// one-shot commands and console lines behave alike. The commands, their
// arguments and summaries come from one table (ctl/completion.cpp).
// Exit codes are listed in ctl/commands.hpp.
#include "ctl/commands.hpp"
#include "ctl/completion.hpp"
#include "ctl/console.hpp"
#include "ctl/doctor.hpp"
#include "ctl/format.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

using namespace crmsync::ctl;

constexpr int enter_console = -1;

std::string check_rfc3339(const std::string& value) {
  if (is_rfc3339(value))
    return {};
  return "'" + value + "' is not an RFC 3339 time such as 2026-11-26T13:00:00Z";
}

void add_paging(CLI::App* cmd, int& limit, bool& all, const char* what) {
  cmd->add_option("--limit", limit,
                  std::string("Page size (how many ") + what + " per request)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_flag("--all", all, "Follow next_cursor and list every page");
}

// A subcommand described by the command table.
CLI::App* command(CLI::App& app, const char* name) {
  const command_info* info = find_command(name);
  return app.add_subcommand(name, info ? info->summary : "");
}

// Parses `words` (without the program name) and runs the command. `g`
// holds the defaults of the global options; on a console line they are the
// console's. `one_shot` is set for the process's own command line: without
// a command it answers enter_console (a console line: usage).
/// The first line of `path`, trimmed; empty when it cannot be read.
std::string read_token_file(const std::string& path) {
  std::ifstream in{path};
  std::string line;
  if (!in || !std::getline(in, line))
    return {};
  auto first = line.find_first_not_of(" \t\r");
  auto last = line.find_last_not_of(" \t\r");
  return first == std::string::npos ? std::string{}
                                    : line.substr(first, last - first + 1);
}

int dispatch(std::vector<std::string> words, global_options& g,
             console_options* one_shot) {
  CLI::App app{"crmsyncctl: admin console for a crmsync node"};
  app.name("crmsyncctl");
  app.fallthrough(); // global options may also follow the command
  app.require_subcommand(0, 1);
  app.footer(
      "Without a command, crmsyncctl starts an interactive console (line\n"
      "editing, history, Tab completion; reads commands line by line when\n"
      "stdin is not a terminal).\n"
      "With --json the node's body is printed unchanged; with --all --json\n"
      "the items of all pages are printed as one {\"items\":[...]} "
      "document.\n"
      "Exit codes: 0 ok, 1 error, 2 usage or missing token, 3 node "
      "unreachable,\n"
      "4 token refused (401), 5 not found (404).");

  auto* node = app.add_option("--node", g.node, "Base URL of the node");
  auto* token = app.add_option("--token", g.token, "Admin token");
  if (one_shot != nullptr) {
    // The process's command line: the environment may supply them; on a
    // console line the values the console started with are the defaults.
    node->envname("CRMSYNC_NODE")->capture_default_str();
    token->envname("CRMSYNC_ADMIN_TOKEN");
    app.add_option("--token-file", one_shot->token_file,
                   "File whose first line is the admin token, read when no "
                   "--token is given (default data/admin.token, the node's "
                   "default data directory)")
        ->envname("CRMSYNC_ADMIN_TOKEN_FILE");
    app.add_option("--history", one_shot->history_file,
                   "Console history file (default $CRMSYNCCTL_HISTORY or "
                   "~/.crmsyncctl_history)");
  }
  app.add_flag("--json", g.json,
               "Print the node's JSON instead of tables (for scripts)");
  app.add_flag("--wide", g.wide,
               "Tables show users as e-mail and id (default: e-mail)");

  list_options l;
  int limit = 0;
  std::string id, kind, target_node;
  std::uint64_t shard = 0;
  bool follow = false;

  auto* status = command(app, "status");
  auto* actors = command(app, "actors");
  auto* actor = command(app, "actor");
  auto* passivate = command(app, "passivate");
  for (auto* c : {actor, passivate}) {
    c->add_option("KIND", kind, "tenant, mailbox or calendar")
        ->required()
        ->check(CLI::IsMember({"tenant", "mailbox", "calendar"}));
    c->add_option("ID", id, "Tenant id, or user id or e-mail address")
        ->required();
  }
  auto* tenants = command(app, "tenants");
  add_paging(tenants, limit, l.all, "tenants");
  auto* tenant = command(app, "tenant");
  tenant->add_option("ID", id, "Tenant id")->required();
  auto* user = command(app, "user");
  user->add_option("ID", id, "User id or e-mail address")->required();
  auto* events = command(app, "events");
  events->add_option("USER", id, "User id")->required();
  events->add_option("--from", l.from, "Start of the time range (RFC 3339)")
      ->check(check_rfc3339);
  events->add_option("--to", l.to, "End of the time range (RFC 3339)")
      ->check(check_rfc3339);
  add_paging(events, limit, l.all, "events");
  auto* audit = command(app, "audit");
  audit->add_option("ORG", id, "Organization id")->required();
  audit->add_option("--limit", limit, "Entries to show (1-1000)")
      ->check(CLI::Range(1, 1000));
  auto* invites = command(app, "invites");
  invites->add_option("ORG", id, "Organization id")->required();
  auto* conflicts = command(app, "conflicts");
  conflicts->add_option("ORG", id, "Organization id")->required();
  conflicts->add_option("--limit", limit, "Entries to show (1-1000)")
      ->check(CLI::Range(1, 1000));
  auto* approve = command(app, "approve-deletes");
  approve->add_option("USER", id, "User id or e-mail address")->required();
  auto* sync = command(app, "sync");
  sync->add_option("USER", id, "User id or e-mail address")->required();
  sync->add_flag("--follow", follow,
                 "Show live progress until the sync is active, held or "
                 "failed (Ctrl-C stops following)");
  auto* watch = command(app, "watch");
  watch->add_option("USER", id, "User id or e-mail address")->required();
  auto* resync = command(app, "resync");
  resync->add_option("USER", id, "User id or e-mail address")->required();
  resync->add_flag("--follow", follow,
                   "Show live progress until the full round is through");
  auto* holds = command(app, "holds");
  holds->add_option("ORG", id, "Organization id")->required();
  auto* check = command(app, "check");
  check->add_option("ORG", id, "Organization id")->required();
  auto* joins = command(app, "join-requests");
  joins->add_option("ORG", id, "Organization id")->required();
  auto* cluster = command(app, "cluster");
  auto* shards = command(app, "shards");
  auto* move = command(app, "move-shard");
  move->add_option("SHARD", shard, "Shard number")->required();
  move->add_option("NODE", target_node, "Node id to move it to")->required();
  // t15-ops
  bool drain_cancel = false;
  bool drain_no_wait = false;
  auto* drain = command(app, "drain");
  drain->add_option("NODE", target_node, "Node id to drain")->required();
  drain->add_flag("--cancel", drain_cancel,
                  "End the drain: the node takes shards again");
  drain->add_flag("--no-wait", drain_no_wait,
                  "Mark the node drained and return without following");
  // t14-data
  std::string confirm;
  auto* export_org = command(app, "export");
  export_org->add_option("ORG", id, "Organization id")->required();
  std::string backup_dir;
  auto* backup = command(app, "backup");
  backup->add_option("DIR", backup_dir, "A new or empty directory")->required();
  auto* delete_org = command(app, "delete-org");
  delete_org->add_option("ORG", id, "Organization id")->required();
  delete_org
      ->add_option("--confirm", confirm,
                   "The organization's name or id, repeated: its data is "
                   "removed for good")
      ->required();
  // t16-m365
  doctor_options doc;
  auto* doctor = command(app, "doctor");
  doctor->add_option("--tenant", doc.tenant,
                     "Office 365 tenant (id or domain) whose consent is "
                     "checked; without it the token and consent checks "
                     "are skipped");
  doctor->add_option("--public-url", doc.public_url,
                     "The URL Microsoft reaches the node at (default: the "
                     "node's --public-url)");

  std::reverse(words.begin(), words.end()); // CLI11 takes them reversed
  try {
    app.parse(words);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; every real parse error is a usage error.
    return app.exit(e) == 0 ? exit_ok : exit_usage;
  }

  if (app.get_subcommands().empty() && one_shot == nullptr) {
    std::cerr << "crmsyncctl: no command; type help for the list\n";
    return exit_usage;
  }
  if (g.token.empty() && one_shot != nullptr)
    g.token = read_token_file(one_shot->token_file);
  if (g.token.empty()) {
    std::cerr << "crmsyncctl: no admin token; pass --token, set "
                 "CRMSYNC_ADMIN_TOKEN, or give --token-file (default "
              << (one_shot != nullptr ? one_shot->token_file
                                      : std::string{"data/admin.token"})
              << ", which is missing or empty: run from the directory "
                 "holding the node's data/ or point --token-file at its "
                 "admin.token)\n";
    return exit_usage;
  }
  if (app.get_subcommands().empty())
    return enter_console;
  if (limit > 0)
    l.limit = limit;

  if (status->parsed())
    return cmd_status(g);
  if (actors->parsed())
    return cmd_actors(g);
  if (actor->parsed())
    return cmd_actor(g, kind, id);
  if (passivate->parsed())
    return cmd_passivate(g, kind, id);
  if (tenants->parsed())
    return cmd_tenants(g, l);
  if (tenant->parsed())
    return cmd_tenant(g, id);
  if (user->parsed())
    return cmd_user(g, id);
  if (events->parsed())
    return cmd_events(g, id, l);
  if (audit->parsed())
    return cmd_audit(g, id, l);
  if (invites->parsed())
    return cmd_invites(g, id);
  if (joins->parsed())
    return cmd_join_requests(g, id);
  if (sync->parsed())
    return follow ? cmd_sync_follow(g, id) : cmd_sync(g, id);
  if (watch->parsed())
    return cmd_sync_follow(g, id);
  if (resync->parsed())
    return cmd_resync(g, id, follow);
  if (holds->parsed())
    return cmd_holds(g, id);
  if (conflicts->parsed())
    return cmd_conflicts(g, id, l);
  if (approve->parsed())
    return cmd_approve_deletes(g, id);
  if (check->parsed())
    return cmd_check(g, id);
  if (cluster->parsed())
    return cmd_cluster(g);
  if (shards->parsed())
    return cmd_shards(g);
  if (move->parsed())
    return cmd_move_shard(g, shard, target_node);
  if (drain->parsed())
    return cmd_drain(g, target_node, drain_cancel, drain_no_wait);
  if (export_org->parsed())
    return cmd_export(g, id);
  if (backup->parsed())
    return cmd_backup(g, backup_dir);
  if (delete_org->parsed())
    return cmd_delete_org(g, id, confirm);
  if (doctor->parsed())
    return cmd_doctor(g, doc);
  return exit_usage;
}

int run(int argc, char** argv) {
  global_options g;
  console_options c;
  std::vector<std::string> words(argv + 1, argv + argc);
  int rc = dispatch(words, g, &c);
  if (rc != enter_console)
    return rc;
  return run_console(
      g, c,
      [](const std::vector<std::string>& line, const global_options& defaults) {
        global_options mine = defaults;
        return dispatch(line, mine, nullptr);
      });
}

} // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "crmsyncctl: internal error: " << e.what() << '\n';
    return exit_failure;
  }
}
