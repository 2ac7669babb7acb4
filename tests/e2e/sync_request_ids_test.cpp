// End-to-end: a failed Graph call can be quoted to Microsoft (issue 16).
// Every Graph request of the node carries a new client-request-id GUID;
// graph-emulator answers each with a request-id GUID and echoes the
// client-request-id, as Graph does; when a call of a user's sync fails,
// both ids and Graph's Date are in the user's sync status, in
// `crmsyncctl sync USER` and in the node's (JSON) log line of the failure.
#include <catch2/catch.hpp>

#include <simdjson.h>

#include <sstream>
#include <string>

#include "tests/e2e/sync_fixture.hpp"
#include "tests/support/ctl_runner.hpp"
#include "tests/support/guid.hpp"

using namespace crmsync::e2e;
using crmsync::test::is_guid;

namespace {

/// The message of every JSON line of `log` at level warn.
std::vector<std::string> warnings(const std::string& log) {
  simdjson::dom::parser parser;
  std::vector<std::string> out;
  std::istringstream lines{log};
  for (std::string line; std::getline(lines, line);) {
    simdjson::dom::element doc;
    if (line.empty() || line.front() != '{'
        || parser.parse(line).get(doc) != simdjson::SUCCESS)
      continue;
    std::string_view level, message;
    if (doc["level"].get(level) == simdjson::SUCCESS && level == "warn"
        && doc["message"].get(message) == simdjson::SUCCESS)
      out.emplace_back(message);
  }
  return out;
}

} // namespace

TEST_CASE("graph-emulator answers with a request-id and echoes "
          "client-request-id, as Graph does",
          "[sync][request_ids]") {
  sync_env env;
  auto path = "/users/" + env.oid() + "/calendars";
  const std::string mine = "0f8fad5b-d9cb-469f-a165-70867728950e";
  auto a = env.graph("GET", path, {}, {{"client-request-id", mine}});
  E2E_REQUIRE_STATUS(a, 200);
  CHECK(a.header("client-request-id") == mine);
  CHECK(is_guid(a.header("request-id")));
  CHECK(a.header("Date").find(" GMT") != std::string::npos);
  // Without one, client-request-id is the request's own id; each request
  // has a new one.
  auto b = env.graph("GET", path);
  E2E_REQUIRE_STATUS(b, 200);
  CHECK(is_guid(b.header("request-id")));
  CHECK(b.header("client-request-id") == b.header("request-id"));
  CHECK(b.header("request-id") != a.header("request-id"));
  // An error names the same ids in its innerError.
  auto missing = env.graph("GET", "/users/" + env.oid() + "/events/AAMkNone",
                           {}, {{"client-request-id", mine}});
  E2E_REQUIRE_STATUS(missing, 404);
  CHECK(missing.str("/error/innerError/request-id")
        == missing.header("request-id"));
  CHECK(missing.str("/error/innerError/client-request-id") == mine);
}

TEST_CASE("a failed Graph call's ids are in the sync status, crmsyncctl "
          "sync and the node's log",
          "[sync][request_ids]") {
  // A failed run is retried within a second; the node logs JSON lines.
  sync_env env{sync_options{1, 0, {"--log-format", "json"}, {}}};
  auto before = env.enable_and_wait();
  CHECK(before.is_null("/last_graph_failure"));
  env.set_faults(R"({"access_denied_rate":1})");
  env.create_event("Made while access is denied", hours_from_now(30),
                   hours_from_now(31));
  auto blocked = env.wait_for_status(
      [](const api_response& s) {
        return !s.is_null("/last_graph_failure")
               && s.str("/last_graph_failure/code") == "ErrorAccessDenied";
      },
      "the failed call's ids in the sync status");
  INFO(blocked.body);
  auto crid = blocked.str("/last_graph_failure/client_request_id");
  auto rid = blocked.str("/last_graph_failure/request_id");
  CHECK(blocked.i64("/last_graph_failure/status") == 403);
  CHECK(is_guid(crid));
  CHECK(is_guid(rid));
  CHECK(crid != rid); // the node sent its own, the emulator answered its own
  CHECK(blocked.str("/last_graph_failure/date").find(" GMT")
        != std::string::npos);

  // The node logged the failure with both ids (the emulator echoed the
  // client-request-id the node sent with the request it answered rid to).
  bool logged = false;
  for (auto& m : warnings(env.o365().node_process().process().log()))
    logged = logged
             || (m.find("client-request-id=" + crid) != std::string::npos
                 && m.find(" request-id=" + rid) != std::string::npos
                 && m.find("403 ErrorAccessDenied") != std::string::npos);
  CHECK(logged);

  // Access comes back; the last failure stays on record (and no longer
  // changes), and the operator sees it with crmsyncctl sync USER.
  env.set_faults(R"({"access_denied_rate":0})");
  env.wait_in_sync();
  auto after = env.wait_for_state("active");
  auto last_crid = after.str("/last_graph_failure/client_request_id");
  auto last_rid = after.str("/last_graph_failure/request_id");
  CHECK(is_guid(last_crid));
  CHECK(is_guid(last_rid));
  auto ctl = run_ctl({"--node", env.o365().node_url(), "--token", admin_token,
                      "sync", env.org().admin_id});
  INFO(ctl.out << ctl.err);
  CHECK(ctl.rc == 0);
  CHECK(ctl.out.find("Last failed Graph call") != std::string::npos);
  CHECK(ctl.out.find(last_crid) != std::string::npos);
  CHECK(ctl.out.find(last_rid) != std::string::npos);
  CHECK(ctl.out.find("ErrorAccessDenied") != std::string::npos);
}
