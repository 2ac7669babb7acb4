// End-to-end tests of crmsyncctl's console against a real crmsyncd and
// graph-emulator (the sync_env fixture): a script on stdin (the console's
// non-terminal path) covering help, status, tenants, a live actor's
// summary, passivation, a resync followed with --follow (plain lines) and
// errors; and a real terminal (forkpty) where libedit completes a partial
// command on TAB and recalls history with the Up arrow.
#include "tests/e2e/sync_fixture.hpp"
#include "tests/support/ctl_runner.hpp"
#include "tests/support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace crmsync::e2e;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

size_t count_of(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (auto p = haystack.find(needle); p != std::string::npos;
       p = haystack.find(needle, p + needle.size()))
    ++n;
  return n;
}

// A key/value row as kv_block prints it: the key, blanks, the value.
bool has_row(const std::string& out, const std::string& key,
             const std::string& value) {
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    auto start = line.find_first_not_of(' ');
    if (start == std::string::npos || line.compare(start, key.size(), key))
      continue;
    auto v = line.find_first_not_of(' ', start + key.size());
    if (v != start + key.size() && v != std::string::npos
        && line.substr(v) == value)
      return true;
  }
  return false;
}

std::vector<std::string> node_args(sync_env& env) {
  return {"--node", env.o365().node_url(), "--token", admin_token};
}

} // namespace

TEST_CASE("the console runs a script from stdin", "[console]") {
  sync_env env;
  env.create_event("Kick-off", hours_from_now(24), hours_from_now(25));
  env.enable_and_wait();
  const auto& org = env.org();
  const auto& user = org.admin_id;

  std::string script = "# a comment line is skipped\n"
                       "help\n"
                       "status\n"
                       "tenants\n"
                       "sync "
                       + user
                       + "\n"
                         "actor calendar "
                       + user
                       + "\n"
                         "actor tenant "
                       + org.id
                       + "\n"
                         "no-such-command\n"
                         "actor calendar 'unterminated\n"
                         "resync "
                       + user
                       + " --follow\n"
                         "passivate calendar "
                       + user
                       + "\n"
                         "--json actors\n"
                         "tenant 99999\n"
                         "quit\n"
                         "status\n";
  auto r = run_ctl(node_args(env), script);
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);

  // help lists every command
  CHECK(contains(r.out, "move-shard SHARD NODE"));
  CHECK(contains(r.out, "resync USER [--follow]"));
  // status and tenants
  CHECK(count_of(r.out, "node id ") == 1); // the status after quit never ran
  CHECK(contains(r.out, org.id));
  // the calendar actor: live after the sync, with its engine timers
  CHECK(has_row(r.out, "kind", "calendar"));
  CHECK(has_row(r.out, "queue length", "0"));
  CHECK(contains(r.out, "passivation"));
  CHECK(contains(r.out, "reconcile"));
  CHECK(contains(r.out, "subscription_renewal"));
  CHECK(has_row(r.out, "state", "active"));
  CHECK(has_row(r.out, "kind", "tenant"));
  // errors are reported and the console goes on
  CHECK(contains(r.err, "unknown command 'no-such-command'"));
  CHECK(contains(r.err, "unterminated ' quote"));
  CHECK(contains(r.err, "not found: organization not found"));
  // the resync: requested, followed in plain lines to active
  CHECK(contains(r.out, "resync of " + user + " requested at "));
  CHECK(contains(r.out, "sync of " + user + ": active"));
  CHECK_FALSE(contains(r.out, "\r"));
  CHECK_FALSE(contains(r.out, "\x1b["));
  // passivation, then the JSON listing no longer shows it as live
  CHECK(contains(r.out, "passivating calendar " + user));
  CHECK(contains(r.out, "\"idle_timeout_ms\""));
  // the last failure decides the exit code: the unknown tenant (404)
  CHECK(r.rc == 5);

  // The passivated calendar goes (passivation is asynchronous: ask until
  // it is gone); then introspection and passivation say it is not live.
  ctl_result gone;
  for (int i = 0; i < 100; ++i) {
    gone = run_ctl(node_args(env), "actor calendar " + user + "\n");
    if (gone.rc != 0)
      break;
  }
  INFO("stdout:\n" << gone.out << "\nstderr:\n" << gone.err);
  CHECK(gone.rc == 5);
  CHECK(contains(gone.err, "not found: no live calendar actor"));
  gone = run_ctl(node_args(env), "passivate calendar " + user + "\n");
  CHECK(gone.rc == 5);
  CHECK(contains(gone.err, "not found: no live calendar actor"));

  // The resync went through the engine: a full round ran and the user is
  // active with a sync after the request.
  auto after = env.status();
  CHECK(after.str("/state") == "active");
}

TEST_CASE("one-shot commands keep working, with clear errors", "[console]") {
  sync_env env;
  auto args = node_args(env);
  args.push_back("resync");
  args.push_back("nobody@nowhere.example");
  auto r = run_ctl(args, "");
  CHECK(r.rc == 5);
  CHECK(contains(r.err, "not found: user not found"));

  auto unknown = node_args(env);
  unknown.push_back("actor");
  unknown.push_back("robot");
  unknown.push_back("1");
  r = run_ctl(unknown, "");
  CHECK(r.rc == 2); // usage: KIND must be tenant, mailbox or calendar

  // A user whose calendar sync is off cannot be resynced.
  auto off = node_args(env);
  off.push_back("resync");
  off.push_back(env.org().admin_id);
  r = run_ctl(off, "");
  INFO(r.err);
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "calendar sync is not enabled for this user"));
}

TEST_CASE("crmsyncctl names linked users and reads data/admin.token",
          "[console]") {
  sync_env env;
  const auto& org = env.org();
  std::vector<std::string> node{"--node", env.o365().node_url()};

  // The admin signed in with Office 365: the user view says so.
  auto args = node_args(env);
  args.insert(args.end(), {"user", org.admin_id});
  auto r = run_ctl(args, "");
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.rc == 0);
  CHECK(has_row(r.out, "office365 linked", "yes"));

  // Without --token: the first line of data/admin.token under the working
  // directory (the node's default data directory).
  crmsync::test::temp_dir here;
  auto with_status = node;
  with_status.push_back("status");
  r = run_ctl(with_status, "", here.path());
  CHECK(r.rc == 2);
  CHECK(contains(r.err, "no admin token"));
  CHECK(contains(r.err, "data/admin.token"));
  mkdir((here.path() + "/data").c_str(), 0700);
  std::ofstream(here.path() + "/data/admin.token") << "wrong-token\n";
  r = run_ctl(with_status, "", here.path());
  CHECK(r.rc == 4); // the file's token was sent, and refused
  std::ofstream(here.path() + "/data/admin.token") << admin_token << "\n";
  r = run_ctl(with_status, "", here.path());
  INFO("stderr:\n" << r.err);
  CHECK(r.rc == 0);
  CHECK(contains(r.out, "node id"));
  // --token-file names another file; --token still wins over the file.
  auto other = node;
  other.insert(other.end(),
               {"--token-file", here.path() + "/data/admin.token", "status"});
  CHECK(run_ctl(other, "").rc == 0);
  auto explicit_token = node;
  explicit_token.insert(explicit_token.end(), {"--token", "wrong", "status"});
  CHECK(run_ctl(explicit_token, "", here.path()).rc == 4);

  // Tables name users by e-mail; --wide adds the id.
  env.enable_and_wait();
  auto check = node_args(env);
  check.insert(check.end(), {"check", org.id});
  r = run_ctl(check, "");
  INFO("check:\n" << r.out << r.err);
  const auto email = env.node()
                         .get(admin_token, user_path(org.id, org.admin_id))
                         .str("/email");
  REQUIRE_FALSE(email.empty());
  CHECK(contains(r.out, email + " "));
  CHECK_FALSE(contains(r.out, org.admin_id));
  check.push_back("--wide");
  r = run_ctl(check, "");
  CHECK(contains(r.out, email + " (" + org.admin_id + ")"));
}

namespace {

// A console on a pseudo terminal: what it wrote so far, and keys to type.
class pty_console {
public:
  pty_console(const std::vector<std::string>& args, const std::string& home) {
    pid_ = forkpty(&fd_, nullptr, nullptr, nullptr);
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      setenv("TERM", "xterm", 1);
      setenv("HOME", home.c_str(), 1);
      exec_ctl(args);
    }
  }
  ~pty_console() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0)
      close(fd_);
  }

  void type(const std::string& keys) {
    REQUIRE(write(fd_, keys.data(), keys.size())
            == static_cast<ssize_t>(keys.size()));
  }

  /// Reads until `text` has appeared `times` times in all output, or the
  /// deadline (a guard against hanging, not a timing assertion) passes.
  bool wait_for(const std::string& text, size_t times = 1) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (count_of(seen_, text) < times) {
      if (std::chrono::steady_clock::now() > deadline)
        return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0)
        continue;
      char buf[4096];
      auto n = read(fd_, buf, sizeof buf);
      if (n <= 0)
        return false;
      seen_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  int wait_exit() {
    int status = 0;
    // Drain so the child never blocks on a full terminal buffer.
    while (waitpid(pid_, &status, WNOHANG) == 0)
      wait_for("\x01never\x01");
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  const std::string& seen() const {
    return seen_;
  }

private:
  int fd_ = -1;
  pid_t pid_ = -1;
  std::string seen_;
};

} // namespace

TEST_CASE("on a terminal, TAB completes and Up recalls history",
          "[console][pty]") {
  sync_env env;
  crmsync::test::temp_dir home;
  auto history = home.path() + "/history";
  auto args = node_args(env);
  args.push_back("--history");
  args.push_back(history);
  pty_console con(args, home.path());
  REQUIRE(con.wait_for("crmsync n1> "));

  // "stat" + TAB completes to "status" (libedit redraws only the added
  // "us "), so Enter runs status; "stat" alone would be unknown.
  con.type("stat\t");
  REQUIRE(con.wait_for("us "));
  con.type("\r");
  INFO(con.seen());
  REQUIRE(con.wait_for("node id"));
  REQUIRE(con.wait_for("crmsync n1> ", 2));

  // An id completes from the node's tenants: the rest of the id appears.
  const auto& org = env.org().id;
  con.type("tenant " + org.substr(0, 3) + "\t");
  REQUIRE(con.wait_for(org.substr(3)));
  con.type("\r");
  REQUIRE(con.wait_for("super admin"));
  REQUIRE(con.wait_for("crmsync n1> ", 3));

  // Up twice recalls "status"; Enter runs it again.
  con.type("\x1b[A\x1b[A\r");
  REQUIRE(con.wait_for("node id", 2));
  REQUIRE(con.wait_for("crmsync n1> ", 4));
  CHECK_FALSE(contains(con.seen(), "unknown command"));

  con.type("quit\r");
  CHECK(con.wait_exit() == 0);
  auto saved = slurp(history);
  CHECK(contains(saved, "status"));
  CHECK(contains(saved, "tenant"));
}

TEST_CASE("crmsyncctl exports an organization and deletes it only when "
          "confirmed (t14-data)",
          "[ctl][org_data]") {
  sync_env env;
  const auto& org = env.org().id;
  auto args = node_args(env);
  auto with = [&](std::vector<std::string> more) {
    auto all = args;
    all.insert(all.end(), more.begin(), more.end());
    return all;
  };

  auto exported = run_ctl(with({"export", org}), "");
  INFO(exported.err);
  CHECK(exported.rc == 0);
  CHECK(exported.out.rfind("{\"kind\":\"export\"", 0) == 0);
  CHECK(contains(exported.out, "{\"kind\":\"end\""));
  CHECK(contains(exported.out, "admin@contoso.com"));
  CHECK_FALSE(contains(exported.out, env.org().token));

  // No --confirm: a usage error; a wrong one: refused by the node.
  CHECK(run_ctl(with({"delete-org", org}), "").rc == 2);
  auto wrong = run_ctl(with({"delete-org", org, "--confirm", "contoso"}), "");
  CHECK(wrong.rc == 1);
  CHECK(contains(wrong.err, "confirmation_mismatch"));
  CHECK(env.node().get(admin_token, org_path(org)).status == 200);

  auto gone
      = run_ctl(with({"delete-org", org, "--confirm", "contoso.com"}), "");
  INFO(gone.err);
  CHECK(gone.rc == 0);
  CHECK(contains(gone.out, "deleted organization " + org));
  CHECK(env.node().get(admin_token, org_path(org)).status == 404);
  CHECK(run_ctl(with({"export", org}), "").rc == 5);
}
