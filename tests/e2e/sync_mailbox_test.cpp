// End-to-end: a mailbox's Graph budget is its mailbox actor's (issue 13
// item 2). The administrator's calendar sync and the invitations sent from
// the administrator's mailbox, at 100 ms of Graph latency, both take their
// slots from the same actor (crmsync_mailbox_slot_wait_seconds counts each
// lane's grants), the two finish, and Outlook never had to refuse the
// mailbox for too many requests at once. A corrupt mailbox record does not
// stop the user's sync.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "storage/db.hpp"
#include "storage/keys.hpp"
#include "tests/e2e/sync_fixture.hpp"

using namespace crmsync::e2e;

namespace {

/// How many slots the node's mailbox actors granted to `lane` (the
/// histogram's count; 0 when absent).
double slots_granted(sync_env& env, std::string_view lane) {
  auto r = env.node().get(admin_token, "/metrics");
  E2E_REQUIRE_STATUS(r, 200);
  const std::string series = "crmsync_mailbox_slot_wait_seconds_count{lane=\""
                             + std::string{lane} + "\"} ";
  auto at = r.body.find("\n" + series);
  if (at == std::string::npos)
    return 0;
  return std::stod(r.body.substr(at + 1 + series.size()));
}

} // namespace

TEST_CASE("a synced user's calendar sync and the e-mail sent from their "
          "mailbox share the mailbox actor's budget",
          "[sync][mailbox][budget]") {
  sync_options opts;
  opts.graph_latency_ms = 100;
  opts.graph_jitter_ms = 0;
  sync_env env{opts};
  env.enable_and_wait();
  auto sync_before = slots_granted(env, "sync");
  CHECK(sync_before > 0); // create calendar, initial sync, subscribe, delta
  CHECK(slots_granted(env, "mail") == 0);
  auto sent_before = env.o365().mail_sent_by("admin@contoso.com").size();

  // Twelve invitations (each supersedes the last, each is an e-mail) and
  // six CRM events, at once, all through the administrator's mailbox.
  const auto bob = env.o365().o365_id("bob@contoso.com");
  for (int i = 0; i < 12; ++i)
    E2E_REQUIRE_STATUS(env.o365().invite(env.org().token, env.org().id, {bob}),
                       201);
  for (int i = 0; i < 6; ++i)
    env.create_event("budget " + std::to_string(i), hours_from_now(2 + i),
                     hours_from_now(3 + i));
  env.o365().wait_for_mail("admin@contoso.com", sent_before + 12,
                           std::chrono::seconds(60));
  env.wait_in_sync();

  CHECK(slots_granted(env, "mail") >= 12);
  CHECK(slots_granted(env, "sync") >= sync_before + 6);
  // At most 4 requests of the mailbox were ever in flight at Graph.
  CHECK(env.counters().throttles == 0);
}

// t13-async: a mailbox record that cannot be read used to stop the mailbox
// actor at each activation, so each Graph slot the user's sync asked for
// failed (mailbox_budget) for good. Now it is reported (log, metric,
// audit), rewritten, and the sync goes on.
TEST_CASE("a corrupt mailbox record is reported and rewritten, and the "
          "user's sync goes on",
          "[sync][mailbox][corrupt]") {
  sync_env env;
  env.enable_and_wait();
  env.o365().stop_node();
  {
    crmsync::storage::db_options o;
    o.path = env.o365().node_process().data_dir() + "/rocksdb";
    auto opened = crmsync::storage::db::open(o);
    REQUIRE(opened);
    auto org = crmsync::tenant_id::parse(env.org().id);
    auto admin = crmsync::user_id::parse(env.org().admin_id);
    REQUIRE(org);
    REQUIRE(admin);
    crmsync::storage::write_batch b;
    b.put(crmsync::storage::column::sync,
          crmsync::storage::keys::sync_state(*org, *admin,
                                             crmsync::entity_kind::mailbox),
          std::string("\xff\x01not a mailbox record", 21));
    REQUIRE_FALSE((*opened)->write(b));
  }
  env.o365().start_node();
  env.create_event("after a corrupt record", hours_from_now(2),
                   hours_from_now(3));
  env.wait_in_sync();
  auto m = env.node().get(admin_token, "/metrics");
  E2E_REQUIRE_STATUS(m, 200);
  CHECK(m.body.find("\ncrmsync_corrupt_records_total{kind=\"mailbox\"} 1")
        != std::string::npos);
  auto actions = env.o365().audit_actions(env.org().id, env.org().token);
  CHECK(std::count(actions.begin(), actions.end(), "mailbox.record_corrupt")
        == 1);
}
