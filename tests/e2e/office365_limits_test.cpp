// End-to-end: the limits on work strangers can make a node do (issue 11,
// items 4 and 6). Sign-in starts are rate-limited per client address, an
// invitation token of a shape the node never issues is refused before
// anything is stored, expired sign-in states, sessions and old invitations
// are purged while live ones stay, wrong passwords back off per account and
// per address (429 with Retry-After, audited), and a flood of guesses from
// one address cannot take the password hashing pool from an administrator.
//
// What is stored is read from the node's RocksDB once the node is stopped.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "storage/db.hpp"
#include "storage/keys.hpp"
#include "tests/e2e/office365_fixture.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync::e2e;
namespace storage = crmsync::storage;

namespace {

/// Rows of the tables these tests watch.
struct stored_rows {
  size_t signin_states = 0;
  size_t sessions = 0;
  size_t invites = 0;
  size_t invite_lookups = 0;
};

/// Counts them in the database of a stopped node.
stored_rows rows_of(const std::string& data_dir) {
  storage::db_options o;
  o.path = data_dir + "/rocksdb";
  auto opened = storage::db::open(o);
  REQUIRE(opened);
  auto& db = **opened;
  stored_rows n;
  db.scan(storage::column::sessions, {}, {},
          [&n](std::string_view k, std::string_view) {
            n.signin_states += !k.empty() && k[0] == 's';
            n.sessions += !k.empty() && k[0] == 'p';
            return true;
          });
  db.scan(storage::column::invites, {}, {},
          [&n](std::string_view, std::string_view) {
            ++n.invites;
            return true;
          });
  auto prefix = storage::keys::invite_token_lookup("");
  db.scan(storage::column::lookup, prefix, storage::keys::prefix_end(prefix),
          [&n](std::string_view, std::string_view) {
            ++n.invite_lookups;
            return true;
          });
  return n;
}

/// Stops the node (which must exit 0), counts, starts it again.
stored_rows rows_now(office365_env& env) {
  auto& node = env.node_process();
  INFO(node.log_tail());
  REQUIRE(node.stop() == 0);
  auto n = rows_of(node.data_dir());
  node.start();
  return n;
}

/// The value of a counter series in GET /metrics, or -1.
double metric(office365_env& env, const std::string& series) {
  auto r = env.node().get(admin_token, "/metrics");
  E2E_REQUIRE_STATUS(r, 200);
  auto at = r.body.find("\n" + series + " ");
  if (at == std::string::npos)
    return -1;
  return std::stod(r.body.substr(at + series.size() + 2));
}

/// A 429 as every refusal of these limits gives it.
void require_too_many(const api_response& r) {
  E2E_REQUIRE_STATUS(r, 429);
  CHECK(r.error_code() == "too_many_requests");
  INFO(r.describe());
  REQUIRE_FALSE(r.header("Retry-After").empty());
  CHECK(std::stol(r.header("Retry-After")) >= 1);
}

/// A token of the shape the node issues (43 base64url characters).
const std::string shaped_token(43, 'A');

api_response associate(api_client& api, const std::string& session,
                       const std::string& email, const std::string& password) {
  return api.post(session, "/o365/associate",
                  "{\"email\":" + json_str(email)
                      + ",\"password\":" + json_str(password) + "}");
}

} // namespace

TEST_CASE("limits: sign-in starts are rate-limited per client address",
          "[e2e][office365][limits]") {
  office365_env::options opts;
  opts.node_args = {"--signin-burst",    "3",        "--signin-per-minute", "1",
                    "--trusted-proxies", "127.0.0.1"};
  office365_env env{opts};
  auto& api = env.node();
  CHECK(api.get("", "/o365/signin").status == 302);
  CHECK(api.get("", "/o365/install").status == 302);
  CHECK(api.get("", "/invite/" + shaped_token).status == 302);
  // The address's burst is spent: every way of starting a sign-in is
  // refused, with the time to wait.
  require_too_many(api.get("", "/o365/signin"));
  require_too_many(api.get("", "/o365/install"));
  require_too_many(api.get("", "/invite/" + shaped_token));
  // Behind a trusted proxy, the client it names is another address; one
  // it merely passes on (left of the proxy's own entry) is not believed.
  auto via = [&](const std::string& xff) {
    return api.request("GET", "/o365/signin", "", {}, "application/json",
                       {{"X-Forwarded-For", xff}});
  };
  for (int i = 0; i < 3; ++i)
    CHECK(via("203.0.113.7").status == 302);
  require_too_many(via("203.0.113.7"));
  require_too_many(via("198.51.100.1, 203.0.113.7"));
  CHECK(via("203.0.113.8").status == 302);
  CHECK(metric(env, "crmsync_refused_requests_total{reason=\"signin_rate\"}")
        == 5);
  // Refused starts stored nothing: 3 + 4 states were started.
  CHECK(rows_now(env).signin_states == 7);
}

TEST_CASE("limits: an invitation token of another shape stores nothing",
          "[e2e][office365][limits]") {
  office365_env env;
  auto& api = env.node();
  for (auto bad : {std::string(4000, 'A'), std::string{"short"},
                   shaped_token.substr(1) + "=", shaped_token + "A"}) {
    auto r = api.get("", "/invite/" + bad);
    E2E_REQUIRE_STATUS(r, 400);
    CHECK(r.error_code() == "invalid_invite_token");
  }
  CHECK(metric(env, "crmsync_refused_requests_total{reason=\"invite_token\"}")
        == 4);
  CHECK(rows_now(env).signin_states == 0);
  // A link of the right shape starts a sign-in as before (the restarted
  // node has a new client).
  CHECK(env.node().get("", "/invite/" + shaped_token).status == 302);
  CHECK(rows_now(env).signin_states == 1);
}

TEST_CASE("limits: expired sign-in states, sessions and invitations are "
          "purged, live ones are kept",
          "[e2e][office365][limits]") {
  office365_env::options opts;
  opts.extra_users = 1;
  // First everything expires at once, and no purge runs yet.
  opts.node_args = {"--signin-lifetime",   "1",      "--session-lifetime", "1",
                    "--invite-lifetime",   "1",      "--invite-retention", "0",
                    "--purge-interval-ms", "3600000"};
  office365_env env{opts};
  auto org = env.install_paid();
  E2E_REQUIRE_STATUS(
      env.invite(org.token, org.id, {env.o365_id("bob@contoso.com")}), 201);
  for (int i = 0; i < 5; ++i)
    env.begin("/o365/signin");
  env.session_of("carol@contoso.com");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto before = rows_now(env);
  CHECK(before.signin_states == 5);
  CHECK(before.sessions == 1);
  CHECK(before.invites == 1);
  CHECK(before.invite_lookups == 1);

  // Then lifetimes as in production, and a purge every 100 ms.
  auto& args = env.node_process().extra_args();
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--signin-lifetime" || args[i] == "--invite-lifetime"
        || args[i] == "--session-lifetime")
      args[i + 1] = "86400";
    if (args[i] == "--purge-interval-ms")
      args[i + 1] = "100";
  }
  REQUIRE(env.node_process().stop() == 0);
  env.node_process().start();
  E2E_REQUIRE_STATUS(
      env.invite(org.token, org.id, {env.o365_id("user01@contoso.com")}), 201);
  env.begin("/o365/signin");
  env.begin("/o365/signin");
  env.session_of("bob@contoso.com");
  // Wait for a pass that found the expired rows.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto purged = [&](const char* kind) {
    return metric(env, std::string{"crmsync_purged_rows_total{kind=\""} + kind
                           + "\"}");
  };
  while ((purged("signin_state") < 5 || purged("session") < 1
          || purged("invite") < 1)
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(purged("signin_state") == 5);
  CHECK(purged("session") == 1);
  CHECK(purged("invite") == 1);
  auto after = rows_now(env);
  CHECK(after.signin_states == 2);
  CHECK(after.sessions == 1);
  CHECK(after.invites == 1);
  CHECK(after.invite_lookups == 1);
}

TEST_CASE("limits: wrong passwords back off per account and per address, "
          "and are audited",
          "[e2e][office365][limits]") {
  office365_env::options opts;
  opts.node_args = {"--password-failures-account", "3",
                    "--password-failures-source",  "4",
                    "--password-backoff-ms",       "60000"};
  office365_env env{opts};
  auto& api = env.node();
  auto acme = create_org(api, "Acme", "boss@acme.example", "free",
                         "the right password");
  auto session = env.session_of("carol@contoso.com");
  for (int i = 0; i < 3; ++i)
    E2E_REQUIRE_STATUS(associate(api, session, "boss@acme.example",
                                 "guess " + std::to_string(i)),
                       401);
  // The account backs off: even its right password waits.
  require_too_many(
      associate(api, session, "boss@acme.example", "another guess"));
  require_too_many(
      associate(api, session, "boss@acme.example", "the right password"));
  // The account's organization is told who tried (the note reaches the
  // tenant's audit log after the answer: wait for it).
  api_response audit;
  CHECK(crmsync::test::eventually([&] {
    audit = api.get(admin_token, "/api/v1/orgs/" + acme.id + "/audit");
    return audit.body.find("\"password.failures\"") != std::string::npos;
  }));
  E2E_REQUIRE_STATUS(audit, 200);
  INFO(audit.body);
  CHECK(audit.body.find("office365:carol@contoso.com") != std::string::npos);
  // The address backs off too once it has guessed wrong 4 times, whatever
  // the accounts (refused attempts are not guesses).
  E2E_REQUIRE_STATUS(associate(api, session, "x1@acme.example", "guess"), 401);
  require_too_many(associate(api, session, "x2@acme.example", "guess"));
  // Nothing stored changed: the account and its token work as before.
  E2E_REQUIRE_STATUS(api.get(acme.admin_token, org_path(acme.id)), 200);
}

TEST_CASE("limits: a flood of password guesses from one address leaves "
          "room for an administrator",
          "[e2e][office365][limits]") {
  office365_env::options opts;
  // One hashing thread, and no backoff to stop the flood before hashing.
  opts.node_args = {"--hash-threads",
                    "1",
                    "--password-failures-account",
                    "1000",
                    "--password-failures-source",
                    "1000"};
  office365_env env{opts};
  auto& api = env.node();
  auto acme = create_org(api, "Acme", "boss@acme.example", "free",
                         "the right password");
  auto session = env.session_of("carol@contoso.com");
  constexpr int flood = 60;
  std::atomic<int> answered{0};
  std::mutex mtx;
  std::vector<int> statuses;
  crmsync::test::thread_guard guessers;
  auto port = api.port();
  for (int i = 0; i < flood; ++i)
    guessers.spawn([&, i] {
      api_client own{port, std::chrono::seconds(60)};
      auto r = associate(own, session, "boss@acme.example",
                         "guess " + std::to_string(i));
      {
        std::lock_guard<std::mutex> guard{mtx};
        statuses.push_back(r.status);
      }
      ++answered;
    });
  // Once the flood is being turned away, the administrator adds a user
  // with a password (hashed on the same pool).
  while (answered == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto created
      = api.post(acme.admin_token, "/api/v1/orgs/" + acme.id + "/users",
                 R"({"email":"new@acme.example","name":"New",)"
                 R"("profile":"standard","manage_users":false,)"
                 R"("password":"a password for new"})");
  guessers.join();
  E2E_REQUIRE_STATUS(created, 201);
  size_t refused = 0;
  for (auto s : statuses) {
    CHECK((s == 401 || s == 429));
    refused += s == 429;
  }
  CHECK(refused > 0);
  CHECK(metric(env, "crmsync_refused_requests_total{reason=\"hash_share\"}")
        == static_cast<double>(refused));
}
