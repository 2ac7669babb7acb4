#include "ctl/completion.hpp"

#include "ctl/table.hpp"

#include <algorithm>

namespace crmsync::ctl {

namespace {

using args = std::vector<std::pair<std::string, arg_kind>>;

std::vector<command_info> make_table() {
  const std::vector<std::string> paging{"--limit", "--all"};
  return {
      {"status", "Node health and counters", {}, {}},
      {"actors", "Actor kinds and live actors", {}, {}},
      {"actor",
       "One live actor: activation, queue length, timers, state summary",
       args{{"KIND", arg_kind::actor_kind}, {"ID", arg_kind::actor_id}},
       {}},
      {"passivate",
       "Passivate a live actor now",
       args{{"KIND", arg_kind::actor_kind}, {"ID", arg_kind::actor_id}},
       {}},
      {"tenants", "List tenants", {}, paging},
      {"tenant", "Show one tenant", args{{"ID", arg_kind::tenant}}, {}},
      {"user", "Show one user", args{{"ID", arg_kind::user}}, {}},
      {"events",
       "List a user's events",
       args{{"USER", arg_kind::user}},
       {"--from", "--to", "--limit", "--all"}},
      {"sync",
       "A user's calendar sync status (--follow: live progress)",
       args{{"USER", arg_kind::user}},
       {"--follow"}},
      {"watch",
       "Follow a user's calendar sync with a live progress bar",
       args{{"USER", arg_kind::user}},
       {}},
      {"resync",
       "Force a full round of a user's calendar sync (--follow: watch it)",
       args{{"USER", arg_kind::user}},
       {"--follow"}},
      {"holds",
       "Syncs of an organization held by the mass-delete guard",
       args{{"ORG", arg_kind::tenant}},
       {}},
      {"approve-deletes",
       "Let a calendar sync held by the mass-delete guard apply its "
       "deletions (once)",
       args{{"USER", arg_kind::user}},
       {}},
      {"check",
       "Convergence checker: compare every synced user's CRM and Office 365 "
       "calendars and list each difference (exit 1 if any)",
       args{{"ORG", arg_kind::tenant}},
       {}},
      {"conflicts",
       "Calendar sync conflicts of an organization: which version won and "
       "the one it replaced, newest first",
       args{{"ORG", arg_kind::tenant}},
       {"--limit"}},
      {"audit",
       "An organization's audit log (installs, invitations, join requests, "
       "approvals, refusals, e-mail), newest first",
       args{{"ORG", arg_kind::tenant}},
       {"--limit"}},
      {"invites",
       "An organization's invitations",
       args{{"ORG", arg_kind::tenant}},
       {}},
      {"join-requests",
       "An organization's requests to join",
       args{{"ORG", arg_kind::tenant}},
       {}},
      {"cluster", "Cluster members: addresses, up, shards", {}, {}},
      {"shards", "Shard map: which node owns which shards", {}, {}},
      {"move-shard",
       "Move a shard to another node",
       args{{"SHARD", arg_kind::shard}, {"NODE", arg_kind::node}},
       {}},
      // t15-ops
      {"drain",
       "Move every shard off a node (at its --rebalance-rate) and follow "
       "the progress; --cancel ends a drain",
       args{{"NODE", arg_kind::node}},
       {"--cancel", "--no-wait"}},
      // t14-data
      {"export",
       "An organization's records as JSON lines on stdout (no secrets)",
       args{{"ORG", arg_kind::tenant}},
       {}},
      {"backup",
       "An online backup of the node into a new directory DIR",
       args{{"DIR", arg_kind::text}},
       {}},
      {"delete-org",
       "Delete an organization and every row of it (--confirm NAME-OR-ID)",
       args{{"ORG", arg_kind::tenant}},
       {"--confirm"}},
      // t16-m365
      {"doctor",
       "Check the Microsoft 365 connection: the node and the admin token, "
       "the token endpoint, a tenant's consent (--tenant), Graph's webhook "
       "handshake on the public URL from here (--public-url); exit 1 if "
       "any check fails",
       {},
       {"--tenant", "--public-url"}},
  };
}

void add_matches(const std::vector<std::string>& from, std::string_view partial,
                 std::vector<std::string>& out) {
  for (auto& c : from)
    if (c.compare(0, partial.size(), partial) == 0)
      out.push_back(c);
}

// The positional words after the command (options and their values
// skipped).
std::vector<std::string> positionals(const std::vector<std::string>& before) {
  std::vector<std::string> out;
  for (std::size_t i = 1; i < before.size(); ++i) {
    const auto& w = before[i];
    if (!w.empty() && w[0] == '-') {
      if (option_takes_value(w) && w.find('=') == std::string::npos)
        ++i;
      continue;
    }
    out.push_back(w);
  }
  return out;
}

// The command word: the first word that is not a global option (global
// options may come first: "--json status").
std::vector<std::string> from_command(const std::vector<std::string>& before) {
  std::size_t i = 0;
  while (i < before.size() && !before[i].empty() && before[i][0] == '-') {
    if (option_takes_value(before[i])
        && before[i].find('=') == std::string::npos)
      ++i;
    ++i;
  }
  if (i >= before.size())
    return {};
  return std::vector<std::string>(before.begin() + i, before.end());
}

} // namespace

const std::vector<command_info>& command_table() {
  static const std::vector<command_info> table = make_table();
  return table;
}

const command_info* find_command(std::string_view name) {
  for (auto& c : command_table())
    if (c.name == name)
      return &c;
  return nullptr;
}

const std::vector<std::string>& global_option_names() {
  static const std::vector<std::string> names{"--json", "--wide", "--node",
                                              "--token", "--help"};
  return names;
}

bool option_takes_value(std::string_view option) {
  auto name = option.substr(0, option.find('='));
  return name == "--node" || name == "--token" || name == "--limit"
         || name == "--from" || name == "--to" || name == "--tenant"
         || name == "--public-url";
}

const std::vector<std::string>& console_words() {
  static const std::vector<std::string> words{"help", "quit", "exit"};
  return words;
}

arg_kind completion_kind(const std::vector<std::string>& before) {
  auto words = from_command(before);
  if (words.empty())
    return arg_kind::command;
  if (words[0] == "help")
    return words.size() == 1 ? arg_kind::command : arg_kind::text;
  const command_info* cmd = find_command(words[0]);
  if (cmd == nullptr)
    return arg_kind::text;
  if (words.size() > 1 && option_takes_value(words.back())
      && words.back().find('=') == std::string::npos)
    return arg_kind::text; // the value of --limit etc.
  auto pos = positionals(words);
  if (pos.size() >= cmd->args.size())
    return arg_kind::text;
  return cmd->args[pos.size()].second;
}

std::vector<std::string> complete(const std::vector<std::string>& before,
                                  std::string_view partial,
                                  const id_lists& ids) {
  std::vector<std::string> out;
  auto words = from_command(before);
  if (!partial.empty() && partial[0] == '-') {
    add_matches(global_option_names(), partial, out);
    if (!words.empty())
      if (const command_info* cmd = find_command(words[0]))
        add_matches(cmd->options, partial, out);
  } else {
    switch (completion_kind(before)) {
      case arg_kind::command: {
        std::vector<std::string> names;
        for (auto& c : command_table())
          names.push_back(c.name);
        add_matches(names, partial, out);
        if (words.empty())
          add_matches(console_words(), partial, out);
        break;
      }
      case arg_kind::tenant:
        add_matches(ids.tenants, partial, out);
        break;
      case arg_kind::user:
        add_matches(ids.users, partial, out);
        break;
      case arg_kind::node:
        add_matches(ids.nodes, partial, out);
        break;
      case arg_kind::shard:
        add_matches(ids.shards, partial, out);
        break;
      case arg_kind::actor_kind:
        add_matches({"tenant", "mailbox", "calendar"}, partial, out);
        break;
      case arg_kind::actor_id: {
        auto pos = positionals(words);
        auto i = pos.empty() ? ids.actors.end() : ids.actors.find(pos.back());
        if (i != ids.actors.end())
          add_matches(i->second, partial, out);
        break;
      }
      case arg_kind::text:
        break;
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string render_command_help() {
  table t({{"COMMAND", align::left}, {"SUMMARY", align::left, 70}});
  for (auto& c : command_table()) {
    std::string usage = c.name;
    for (auto& a : c.args)
      usage += " " + a.first;
    for (auto& o : c.options)
      usage += " [" + o + (option_takes_value(o) ? " X]" : "]");
    t.add_row({usage, c.summary});
  }
  return t.render()
         + "\nGlobal options: --json (print the node's JSON), --node URL, "
           "--token TOKEN.\n"
           "help COMMAND shows a command's options; quit, exit or Ctrl-D "
           "leaves.\nTab completes commands, options and ids (tenants, "
           "users, live actors, shards, nodes).\n";
}

} // namespace crmsync::ctl
