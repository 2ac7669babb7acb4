#include "ctl/console.hpp"

#include "ctl/completion.hpp"
#include "ctl/format.hpp"
#include "ctl/render.hpp"

#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>

#include <unistd.h>

// libedit's readline interface (Debian libedit-dev): line editing, history
// and completion without hand-written terminal code.
#include <editline/readline.h>

namespace crmsync::ctl {

namespace dom = simdjson::dom;

namespace {

const std::string api_root = "/admin/v1";

// Ids from the node for completion; each list is fetched when first needed
// and kept for a few seconds so that repeated TABs cost nothing.
class id_cache {
public:
  explicit id_cache(const global_options& g) : g_(g) {}

  const id_lists& lists_for(arg_kind kind) {
    auto now = std::chrono::steady_clock::now();
    auto& when = fetched_[kind];
    if (when != std::chrono::steady_clock::time_point{}
        && now - when < std::chrono::seconds(10))
      return ids_;
    when = now;
    switch (kind) {
      case arg_kind::tenant:
        fetch_tenants();
        break;
      case arg_kind::user:
        fetch_users();
        break;
      case arg_kind::actor_id:
        fetch_actors();
        break;
      case arg_kind::shard:
      case arg_kind::node:
        fetch_cluster();
        break;
      default:
        break;
    }
    return ids_;
  }

private:
  bool get(const std::string& target, dom::element& doc) {
    if (!fetch_quietly(g_, target, body_))
      return false;
    std::string err;
    return parse_json(parser_, body_, doc, err);
  }

  void fetch_tenants() {
    ids_.tenants.clear();
    dom::element doc;
    dom::array items;
    if (get(api_root + "/tenants?limit=1000", doc)
        && doc["items"].get_array().get(items) == simdjson::SUCCESS)
      for (dom::element t : items)
        ids_.tenants.push_back(json_text(t["id"]));
  }

  void fetch_actors() {
    ids_.actors.clear();
    dom::element doc;
    dom::array items;
    if (get(api_root + "/actors", doc)
        && doc["items"].get_array().get(items) == simdjson::SUCCESS)
      for (dom::element a : items)
        ids_.actors[json_text(a["kind"])].push_back(json_text(a["id"]));
  }

  // Users of the first tenants (ids and e-mail addresses), enough for
  // completion on a console without listing a large installation.
  void fetch_users() {
    fetch_tenants();
    ids_.users.clear();
    std::size_t n = 0;
    for (auto& org : std::vector<std::string>(ids_.tenants)) {
      if (++n > 20)
        break;
      dom::element doc;
      dom::array items;
      if (get("/api/v1/orgs/" + url_encode(org) + "/users?limit=1000", doc)
          && doc["items"].get_array().get(items) == simdjson::SUCCESS)
        for (dom::element u : items) {
          ids_.users.push_back(json_text(u["id"]));
          auto email = json_text(u["email"]);
          if (email != "-")
            ids_.users.push_back(email);
        }
    }
  }

  void fetch_cluster() {
    ids_.nodes.clear();
    ids_.shards.clear();
    dom::element doc;
    if (!get(api_root + "/cluster", doc))
      return;
    dom::array members;
    if (doc["members"].get_array().get(members) == simdjson::SUCCESS)
      for (dom::element m : members)
        ids_.nodes.push_back(json_text(m["id"]));
    std::uint64_t count = 0;
    if (doc["shard_count"].get_uint64().get(count) == simdjson::SUCCESS)
      for (std::uint64_t i = 0; i < count && i < 100000; ++i)
        ids_.shards.push_back(std::to_string(i));
  }

  const global_options& g_;
  id_lists ids_;
  std::map<arg_kind, std::chrono::steady_clock::time_point> fetched_;
  std::string body_;
  dom::parser parser_;
};

// libedit calls the completion hooks without a context pointer.
id_cache* active_cache = nullptr;
std::vector<std::string> candidates;

char* next_candidate(const char*, int state) {
  static std::size_t index = 0;
  if (state == 0)
    index = 0;
  if (index >= candidates.size())
    return nullptr;
  return strdup(candidates[index++].c_str());
}

char** complete_hook(const char* text, int start, int) {
  rl_attempted_completion_over = 1; // never fall back to file names
  std::vector<std::string> before;
  std::string err;
  if (!split_words(std::string_view(rl_line_buffer, start), before, err))
    return nullptr;
  auto kind = completion_kind(before);
  static const id_lists none;
  const id_lists& ids = active_cache ? active_cache->lists_for(kind) : none;
  candidates = complete(before, text, ids);
  if (candidates.empty())
    return nullptr;
  return rl_completion_matches(text, next_candidate);
}

std::string history_path(const console_options& c) {
  if (!c.history_file.empty())
    return c.history_file;
  if (const char* env = std::getenv("CRMSYNCCTL_HISTORY"); env && *env)
    return env;
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.crmsyncctl_history";
  return {};
}

// "crmsync n1> ", or the node's address when its status cannot be read.
std::string make_prompt(const global_options& g) {
  std::string body;
  dom::parser parser;
  dom::element doc;
  std::string err;
  std::string_view id;
  if (fetch_quietly(g, api_root + "/status", body)
      && parse_json(parser, body, doc, err)
      && doc["node_id"].get_string().get(id) == simdjson::SUCCESS)
    return "crmsync " + sanitize(id) + "> ";
  auto host = g.node;
  if (auto p = host.find("://"); p != std::string::npos)
    host = host.substr(p + 3);
  return "crmsync " + sanitize(host) + "> ";
}

// Runs one line; `quit` is set by quit/exit. Returns the exit code.
int run_line(const std::string& line, const global_options& g,
             const dispatch_fn& dispatch, bool& quit) {
  std::vector<std::string> words;
  std::string err;
  if (!split_words(line, words, err)) {
    std::cerr << "crmsyncctl: " << err << '\n';
    return exit_usage;
  }
  if (words.empty() || words[0][0] == '#')
    return exit_ok;
  if (words[0] == "quit" || words[0] == "exit") {
    quit = true;
    return exit_ok;
  }
  if (words[0] == "help") {
    if (words.size() == 1) {
      std::cout << render_command_help();
      return exit_ok;
    }
    if (find_command(words[1]) == nullptr) {
      std::cerr << "crmsyncctl: no command '" << words[1]
                << "'; type help for the list\n";
      return exit_usage;
    }
    return dispatch({words[1], "--help"}, g);
  }
  if (find_command(words[0]) == nullptr && words[0][0] != '-') {
    std::cerr << "crmsyncctl: unknown command '" << words[0]
              << "'; type help for the list\n";
    return exit_usage;
  }
  return dispatch(words, g);
}

} // namespace

int run_console(const global_options& g, const console_options& c,
                dispatch_fn dispatch) {
  int last_failure = exit_ok;
  bool quit = false;
  auto note = [&](int rc) {
    if (rc != exit_ok)
      last_failure = rc;
    std::cout << std::flush;
  };

  if (isatty(STDIN_FILENO) != 1) {
    // Scripted: one command per line, no prompt, no history.
    std::string line;
    while (!quit && std::getline(std::cin, line))
      note(run_line(line, g, dispatch, quit));
    return last_failure;
  }

  id_cache cache(g);
  active_cache = &cache;
  rl_readline_name = const_cast<char*>("crmsyncctl");
  rl_attempted_completion_function = complete_hook;
  // Ids and e-mail addresses contain '@', '.' and '-': only blanks split.
  static char breaks[] = " \t";
  rl_basic_word_break_characters = breaks;
  rl_completer_word_break_characters = breaks;
  using_history();
  stifle_history(1000);
  auto hist = history_path(c);
  if (!hist.empty())
    read_history(hist.c_str());

  std::string prompt = make_prompt(g);
  std::cout << "crmsyncctl console on " << g.node
            << " (help lists the commands, Tab completes, Ctrl-D leaves)\n";
  while (!quit) {
    char* raw = readline(prompt.c_str());
    if (raw == nullptr) {
      std::cout << '\n';
      break; // EOF (Ctrl-D)
    }
    std::string line(raw);
    std::free(raw);
    if (line.find_first_not_of(" \t") == std::string::npos)
      continue;
    add_history(line.c_str());
    if (!hist.empty())
      write_history(hist.c_str());
    note(run_line(line, g, dispatch, quit));
  }
  active_cache = nullptr;
  return last_failure;
}

} // namespace crmsync::ctl
