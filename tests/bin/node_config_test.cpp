// crmsyncd's configuration (bin/node_config): the built-in defaults, the
// precedence of flags, the --config file and CRMSYNC_* variables, and the
// refusal of bad values (exit code 2) before anything starts.
#include "bin/node_config.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"

using crmsync::node_config;

namespace {

/// What parse_node_config made of `args` (after the program name).
struct parsed {
  node_config config;
  int exit_code = 0;
};

parsed parse(const std::vector<std::string>& args) {
  std::vector<std::string> all{"crmsyncd"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  parsed out;
  out.config = crmsync::parse_node_config(static_cast<int>(all.size()),
                                          argv.data(), out.exit_code);
  return out;
}

/// Sets an environment variable for one scope, then puts back what was.
class scoped_env {
public:
  scoped_env(std::string name, const std::string& value)
      : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str()))
      old_ = old;
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~scoped_env() {
    if (old_)
      ::setenv(name_.c_str(), old_->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

private:
  std::string name_;
  std::optional<std::string> old_;
};

} // namespace

TEST_CASE("node_config: the defaults", "[node_config]") {
  auto p = parse({});
  REQUIRE(p.exit_code == -1);
  auto& c = p.config;
  // R17: an initial sync sends at most 5000 CRM events.
  CHECK(c.max_initial_events == 5000);
  CHECK(c.reconcile_interval_s == 300);
  CHECK(c.reminders_per_second == 1000);
  // Graph's per-app and smallest app+tenant limits (actors/governor.hpp).
  CHECK(c.graph_app_rps == 13000);
  CHECK(c.graph_tenant_rps == 350);
  CHECK(c.calendar_idle_s == 10);
  CHECK(c.memory_trim_s == 30);
  CHECK(c.mass_delete_share == 0.5);
  CHECK(c.mass_delete_minimum == 10);
  CHECK(c.max_notifications_per_post == 1000);
  CHECK(c.listen == "127.0.0.1:8080");
  CHECK(c.listen_host == "127.0.0.1");
  CHECK(c.listen_port == 8080);
  CHECK(c.data_dir == "data");
  CHECK(c.graph_base_url == "https://graph.microsoft.com/v1.0");
  CHECK(c.login_base_url == "https://login.microsoftonline.com");
  CHECK(c.node_id == "n1");
  CHECK(c.shard_count == 256);
  CHECK(c.log_level == "info");
  CHECK(c.log_format == "text");
  CHECK(c.trusted_proxies.empty());
  CHECK(c.max_body_bytes == 1u << 20);
  CHECK(c.invite_lifetime_s == 7 * 24 * 3600);
  CHECK(c.peers.empty());
  CHECK(c.peer_list.empty());
  CHECK(c.metrics_listen.empty());
  CHECK_FALSE(c.sync_writes);
}

TEST_CASE("node_config: flags set the sync options", "[node_config]") {
  auto p = parse({"--max-initial-events", "5", "--reconcile-interval", "2",
                  "--mass-delete-share", "0.25", "--listen", "127.0.0.1:0",
                  "--sync-writes", "--reminders-per-second", "50",
                  "--graph-app-rps", "500", "--graph-tenant-rps", "40",
                  "--graph-io-threads", "3"});
  REQUIRE(p.exit_code == -1);
  CHECK(p.config.max_initial_events == 5);
  CHECK(p.config.reconcile_interval_s == 2);
  CHECK(p.config.mass_delete_share == 0.25);
  CHECK(p.config.listen_port == 0);
  CHECK(p.config.sync_writes);
  CHECK(p.config.reminders_per_second == 50);
  CHECK(p.config.graph_app_rps == 500);
  CHECK(p.config.graph_tenant_rps == 40);
  CHECK(p.config.graph_io_threads == 3);
  CHECK(parse({}).config.graph_io_threads == 2);
}

TEST_CASE("node_config: a flag wins over the config file, which wins over "
          "the environment",
          "[node_config]") {
  crmsync::test::temp_dir dir;
  auto file = dir.path() + "/crmsyncd.toml";
  std::ofstream{file} << "max-initial-events = 300\n"
                         "reconcile-interval = 60\n";
  scoped_env initial{"CRMSYNC_MAX_INITIAL_EVENTS", "70"};
  scoped_env interval{"CRMSYNC_RECONCILE_INTERVAL", "30"};
  scoped_env share{"CRMSYNC_MASS_DELETE_SHARE", "0.75"};

  auto from_env = parse({});
  REQUIRE(from_env.exit_code == -1);
  CHECK(from_env.config.max_initial_events == 70);
  CHECK(from_env.config.reconcile_interval_s == 30);
  CHECK(from_env.config.mass_delete_share == 0.75);

  auto from_file = parse({"--config", file});
  REQUIRE(from_file.exit_code == -1);
  CHECK(from_file.config.max_initial_events == 300);
  CHECK(from_file.config.reconcile_interval_s == 60);
  CHECK(from_file.config.mass_delete_share == 0.75); // not in the file

  auto from_flag = parse({"--config", file, "--max-initial-events", "9"});
  REQUIRE(from_flag.exit_code == -1);
  CHECK(from_flag.config.max_initial_events == 9);
  CHECK(from_flag.config.reconcile_interval_s == 60);
}

TEST_CASE("node_config: a key the config file misspells is refused with "
          "exit code 2, naming it, and the example file passes",
          "[node_config]") {
  crmsync::test::temp_dir dir;
  auto file = dir.path() + "/crmsyncd.toml";
  std::ofstream{file} << "max-initial-events = 300\n"
                         "reconcile-intervall = 60\n";
  std::ostringstream err;
  auto* old = std::cerr.rdbuf(err.rdbuf());
  auto typo = parse({"--config", file});
  std::cerr.rdbuf(old);
  CHECK(typo.exit_code == 2);
  CHECK(err.str().find("reconcile-intervall") != std::string::npos);

  // The example operators start from names only real settings.
  auto example = parse({"--config", std::string{CRMSYNC_SOURCE_DIR}
                                        + "/deploy/crmsyncd.conf.example"});
  CHECK(example.exit_code == -1);
  CHECK(example.config.data_dir == "/var/lib/crmsync");
}

TEST_CASE("node_config: bad values are refused with exit code 2",
          "[node_config]") {
  std::vector<std::vector<std::string>> bad{
      {"--max-initial-events", "-1"},
      {"--max-initial-events", "1000001"},
      {"--max-initial-events", "many"},
      {"--reconcile-interval", "0"},
      {"--reconcile-interval", "86401"},
      {"--reminders-per-second", "0"},
      {"--reminders-per-second", "1000001"},
      {"--graph-app-rps", "0"},
      {"--calendar-idle", "0"},
      {"--memory-trim-interval", "-1"},
      {"--memory-trim-interval", "86401"},
      {"--graph-tenant-rps", "0"},
      {"--graph-tenant-rps", "1000001"},
      {"--graph-io-threads", "0"},
      {"--graph-io-threads", "65"},
      {"--sync-threads", "4"},  // gone with the sync engine's threads
      {"--graph-threads", "2"}, // gone with the Office 365 pool (t13-async)
      {"--mass-delete-share", "1.5"},
      {"--mass-delete-minimum", "0"},
      {"--max-notifications-per-post", "0"},
      {"--shards", "0"},
      {"--log-level", "verbose"},
      {"--log-format", "yaml"},
      {"--log-format", "JSON"},
      {"--trusted-proxies", "10.0.0.0/33"},
      {"--trusted-proxies", "127.0.0.1,proxy.example"},
      {"--trusted-proxies", "10.0.0.0/8x"},
      {"--listen", "8080"},
      {"--listen", "127.0.0.1:65536"},
      {"--metrics-listen", "nowhere"},
      {"--cluster-listen", "127.0.0.1:7000"},
      {"--cluster-cert", "/tmp/cert.pem"},
      {"--peers", "n2=127.0.0.1:7001"},
      {"--peers", "n1=127.0.0.1:7001", "--cluster-listen", "127.0.0.1:7000"},
      {"--node-id", ""},
      {"--data-dir", ""},
      {"--no-such-option", "1"},
  };
  for (auto& args : bad) {
    std::string shown;
    for (auto& a : args)
      shown += a + " ";
    INFO("crmsyncd " << shown);
    CHECK(parse(args).exit_code == 2);
  }
}

TEST_CASE("node_config: log format and trusted proxies (addresses, CIDR)",
          "[node_config]") {
  auto p = parse({"--log-format", "json", "--trusted-proxies",
                  "127.0.0.1,10.0.0.0/8,fd00::/8"});
  REQUIRE(p.exit_code == -1);
  CHECK(p.config.log_format == "json");
  CHECK(p.config.trusted_proxies
        == std::vector<std::string>{"127.0.0.1", "10.0.0.0/8", "fd00::/8"});
  scoped_env fmt{"CRMSYNC_LOG_FORMAT", "json"};
  CHECK(parse({}).config.log_format == "json");
}

TEST_CASE("node_config: --help exits 0", "[node_config]") {
  CHECK(parse({"--help"}).exit_code == 0);
}
