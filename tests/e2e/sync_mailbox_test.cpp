// End-to-end: a mailbox's Graph budget is its mailbox actor's (issue 13
// item 2). The administrator's calendar sync and the invitations sent from
// the administrator's mailbox, at 100 ms of Graph latency, both take their
// slots from the same actor (crmsync_mailbox_slot_wait_seconds counts each
// lane's grants), the two finish, and Outlook never had to refuse the
// mailbox for too many requests at once.
#include <catch2/catch.hpp>

#include <string>

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
