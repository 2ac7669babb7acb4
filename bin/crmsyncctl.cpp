// crmsyncctl: the admin console of a crmsync node.
//
//   crmsyncctl [--node URL] [--token TOKEN] [--json] COMMAND [ARGS]
//
// Parses the command line with CLI11 and hands over to ctl/commands.cpp.
// Exit codes are listed in ctl/commands.hpp.
#include "ctl/commands.hpp"
#include "ctl/format.hpp"

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <string>

namespace {

using namespace crmsync::ctl;

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

int run(int argc, char** argv) {
  CLI::App app{"crmsyncctl: admin console for a crmsync node"};
  app.name("crmsyncctl");
  app.fallthrough(); // global options may also follow the command
  app.require_subcommand(0, 1);
  app.footer(
      "With --json the node's body is printed unchanged; with --all --json\n"
      "the items of all pages are printed as one {\"items\":[...]} "
      "document.\n"
      "Exit codes: 0 ok, 1 error, 2 usage or missing token, 3 node "
      "unreachable,\n"
      "4 token refused (401), 5 not found (404).");

  global_options g;
  app.add_option("--node", g.node, "Base URL of the node")
      ->envname("CRMSYNC_NODE")
      ->capture_default_str();
  app.add_option("--token", g.token, "Admin token")
      ->envname("CRMSYNC_ADMIN_TOKEN");
  app.add_flag("--json", g.json,
               "Print the node's JSON instead of tables (for scripts)");

  list_options l;
  int limit = 0;
  std::string id;

  auto* status = app.add_subcommand("status", "Node health and counters");
  auto* actors = app.add_subcommand("actors", "Actor kinds and live actors");
  auto* tenants = app.add_subcommand("tenants", "List tenants");
  add_paging(tenants, limit, l.all, "tenants");
  auto* tenant = app.add_subcommand("tenant", "Show one tenant");
  tenant->add_option("ID", id, "Tenant id")->required();
  auto* user = app.add_subcommand("user", "Show one user");
  user->add_option("ID", id, "User id or e-mail address")->required();
  auto* events = app.add_subcommand("events", "List a user's events");
  events->add_option("USER", id, "User id")->required();
  events->add_option("--from", l.from, "Start of the time range (RFC 3339)")
      ->check(check_rfc3339);
  events->add_option("--to", l.to, "End of the time range (RFC 3339)")
      ->check(check_rfc3339);
  add_paging(events, limit, l.all, "events");
  auto* audit = app.add_subcommand(
      "audit", "An organization's audit log (installs, invitations, join "
               "requests, approvals, refusals, e-mail), newest first");
  audit->add_option("ORG", id, "Organization id")->required();
  audit->add_option("--limit", limit, "Entries to show (1-1000)")
      ->check(CLI::Range(1, 1000));
  auto* invites
      = app.add_subcommand("invites", "An organization's invitations");
  invites->add_option("ORG", id, "Organization id")->required();
  auto* conflicts = app.add_subcommand(
      "conflicts", "Calendar sync conflicts of an organization: which "
                   "version won and the one it replaced, newest first");
  conflicts->add_option("ORG", id, "Organization id")->required();
  conflicts->add_option("--limit", limit, "Entries to show (1-1000)")
      ->check(CLI::Range(1, 1000));
  auto* approve = app.add_subcommand(
      "approve-deletes", "Let a calendar sync held by the mass-delete guard "
                         "apply its deletions (once)");
  approve->add_option("USER", id, "User id or e-mail address")->required();
  auto* sync = app.add_subcommand("sync", "A user's calendar sync status");
  sync->add_option("USER", id, "User id or e-mail address")->required();
  auto* check = app.add_subcommand(
      "check", "Convergence checker: compare every synced user's CRM and "
               "Office 365 calendars and list each difference (exit 1 if any)");
  check->add_option("ORG", id, "Organization id")->required();
  auto* joins = app.add_subcommand("join-requests",
                                   "An organization's requests to join");
  joins->add_option("ORG", id, "Organization id")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; every real parse error is a usage error.
    return app.exit(e) == 0 ? exit_ok : exit_usage;
  }

  if (app.get_subcommands().empty()) {
    // The interactive console will live here; until then, explain usage.
    std::cerr << app.help();
    return exit_usage;
  }
  if (g.token.empty()) {
    std::cerr << "crmsyncctl: no admin token; pass --token or set "
                 "CRMSYNC_ADMIN_TOKEN\n";
    return exit_usage;
  }
  if (limit > 0)
    l.limit = limit;

  if (status->parsed())
    return cmd_status(g);
  if (actors->parsed())
    return cmd_actors(g);
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
    return cmd_sync(g, id);
  if (conflicts->parsed())
    return cmd_conflicts(g, id, l);
  if (approve->parsed())
    return cmd_approve_deletes(g, id);
  if (check->parsed())
    return cmd_check(g, id);
  return exit_usage;
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
