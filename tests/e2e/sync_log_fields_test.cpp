// End-to-end: with --log-format json, the lines of a user's calendar sync
// and of the mailer name the organization and the user ("org", "user"), as
// a request's lines do (issue 16, t16-m365): an operator filters a node's
// log by user after a sync error, and the Graph client's line of the
// failed call (with the ids to quote to Microsoft) is among them.
#include <catch2/catch.hpp>

#include <simdjson.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/sync_fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace crmsync::e2e;

namespace {

struct json_line {
  std::string level;
  std::string message;
  std::string org;
  std::string user;
};

std::string member(simdjson::dom::element doc, const char* name) {
  std::string_view v;
  return doc[name].get(v) == simdjson::SUCCESS ? std::string{v} : "";
}

/// The JSON lines of a node's log (other lines, none expected, skipped).
std::vector<json_line> json_lines(const std::string& log) {
  simdjson::dom::parser parser;
  std::vector<json_line> out;
  std::istringstream lines{log};
  for (std::string line; std::getline(lines, line);) {
    simdjson::dom::element doc;
    if (line.empty() || line.front() != '{'
        || parser.parse(line).get(doc) != simdjson::SUCCESS)
      continue;
    out.push_back({member(doc, "level"), member(doc, "message"),
                   member(doc, "org"), member(doc, "user")});
  }
  return out;
}

/// The first line whose message holds every one of `parts` (level
/// "" when there is none).
json_line find_line(const std::string& log,
                    const std::vector<std::string>& parts) {
  for (auto& l : json_lines(log)) {
    bool all = true;
    for (auto& p : parts)
      all = all && l.message.find(p) != std::string::npos;
    if (all)
      return l;
  }
  return {};
}

} // namespace

TEST_CASE("sync and mailer JSON log lines carry the organization and the "
          "user",
          "[sync][log_fields]") {
  sync_env env{sync_options{1, 0, {"--log-format", "json"}, {}}};
  env.enable_and_wait();
  const auto& org = env.org();
  // Bob signs in before Graph starts refusing; he is no member yet.
  auto bob = env.o365().session_of("bob@contoso.com");
  auto& node = env.o365().node_process();

  // An administrator blocks the app's access to mailboxes: the sync of the
  // next CRM change fails.
  env.set_faults(R"({"access_denied_rate":1})");
  env.create_event("Made while access is denied", hours_from_now(30),
                   hours_from_now(31));
  env.wait_for_status(
      [](const api_response& s) {
        return !s.is_null("/last_graph_failure")
               && s.str("/last_graph_failure/code") == "ErrorAccessDenied";
      },
      "the sync blocked by ErrorAccessDenied");

  json_line blocked, graph_call;
  CHECK(crmsync::test::eventually([&] {
    auto log = node.process().log();
    blocked = find_line(log, {"sync ", ": blocked"});
    graph_call = find_line(
        log, {"graph: ", "403 ErrorAccessDenied", "client-request-id="});
    return !blocked.level.empty() && !graph_call.level.empty();
  }));
  INFO(node.process().log_tail(6000));
  INFO("sync line: " << blocked.message);
  CHECK(blocked.org == org.id);
  CHECK(blocked.user == org.admin_id);
  // The Graph client logs the failed call from one of its I/O threads,
  // under the context of the sync that started it.
  INFO("graph line: " << graph_call.message);
  CHECK(graph_call.level == "warn");
  CHECK(graph_call.org == org.id);
  CHECK(graph_call.user == org.admin_id);

  // Bob asks to join: the node e-mails the administrator from the
  // administrator's mailbox, and Graph refuses the send.
  auto asked = env.node().post(bob, "/api/v1/join-requests", "{}");
  E2E_REQUIRE_STATUS(asked, 201);
  json_line mailer;
  CHECK(crmsync::test::eventually([&] {
    mailer = find_line(node.process().log(), {"mailer: sending to ", "failed"});
    return !mailer.level.empty();
  }));
  INFO("mailer line: " << mailer.message);
  CHECK(mailer.org == org.id);
  CHECK(mailer.user == org.admin_id);
}
