// The command table of crmsyncctl and the console's tab completion.
//
// One table describes every command: its name, its positional arguments
// (and what kind of id each takes) and its options. crmsyncctl.cpp builds
// its CLI11 parser from the names and summaries here, so the one-shot
// command line and the console share one dispatch table; the console
// completes command names, options and ids from it. Pure functions only:
// the ids come from the caller (console.cpp fetches them from the node).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace crmsync::ctl {

/// What a positional argument names; drives id completion.
enum class arg_kind {
  text,       ///< free text, nothing to complete
  tenant,     ///< an organization id
  user,       ///< a user id or e-mail address
  actor_kind, ///< tenant, mailbox or calendar
  actor_id,   ///< an id of a live actor of the kind before it
  shard,      ///< a shard number
  node,       ///< a cluster node id
  command,    ///< a command name (help COMMAND)
};

struct command_info {
  std::string name;
  std::string summary;
  /// Positional arguments, in order: display name and kind.
  std::vector<std::pair<std::string, arg_kind>> args;
  /// Options ("--all"); those in `valued` take a value.
  std::vector<std::string> options;
};

/// Every command, in the order `help` lists them.
const std::vector<command_info>& command_table();

/// The entry for `name`, or nullptr.
const command_info* find_command(std::string_view name);

/// Options every command takes.
const std::vector<std::string>& global_option_names();

/// True for options that take a value (so the next word is not an
/// argument): --node, --token, --limit, --from, --to.
bool option_takes_value(std::string_view option);

/// Words the console understands besides the commands.
const std::vector<std::string>& console_words();

/// The ids the console knows (fetched from the node, cached briefly).
struct id_lists {
  std::vector<std::string> tenants;
  std::vector<std::string> users; ///< ids and e-mail addresses
  std::vector<std::string> nodes;
  std::vector<std::string> shards;
  /// Live actors: kind -> ids.
  std::map<std::string, std::vector<std::string>> actors;
};

/// What the word being typed can complete to. `before` holds the complete
/// words before it (as split_words gives them), `partial` the beginning
/// typed so far. Sorted, without duplicates.
std::vector<std::string> complete(const std::vector<std::string>& before,
                                  std::string_view partial,
                                  const id_lists& ids);

/// Which id list the word being typed needs (so the console fetches only
/// that): the arg_kind, or arg_kind::text when none.
arg_kind completion_kind(const std::vector<std::string>& before);

/// "help": one line per command with its arguments and summary.
std::string render_command_help();

} // namespace crmsync::ctl
