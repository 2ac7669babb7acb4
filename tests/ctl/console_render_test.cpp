// Unit tests for the console's pure parts: the command table and Tab
// completion, line splitting, RFC 3339 parsing, and the renderers of the
// cluster, shard, actor and progress answers (canned JSON as the contract
// in ../shared/spec/API.md and issue 6 describe it; no node involved).
#include "ctl/completion.hpp"
#include "ctl/format.hpp"
#include "ctl/render.hpp"

#include <catch2/catch.hpp>

#include <simdjson.h>

#include <string>
#include <vector>

using namespace crmsync::ctl;

namespace {

simdjson::dom::element parse(simdjson::dom::parser& parser,
                             const std::string& json) {
  simdjson::dom::element doc;
  std::string err;
  REQUIRE(parse_json(parser, json, doc, err));
  return doc;
}

std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out;
  std::string err;
  REQUIRE(split_words(line, out, err));
  return out;
}

using strings = std::vector<std::string>;

} // namespace

TEST_CASE("split_words splits like a shell for simple cases",
          "[ctl][console]") {
  CHECK(words("") == strings{});
  CHECK(words("  status  ") == strings{"status"});
  CHECK(words("user a@b.c --json") == strings{"user", "a@b.c", "--json"});
  CHECK(words("x 'two words' \"and \\\"more\\\"\"")
        == strings{"x", "two words", "and \"more\""});
  CHECK(words("a\\ b ''") == strings{"a b", ""});
  strings out;
  std::string err;
  CHECK_FALSE(split_words("x 'open", out, err));
  CHECK(err == "unterminated ' quote");
  CHECK_FALSE(split_words("x \\", out, err));
  CHECK(err == "the line ends in a backslash");
}

TEST_CASE("parse_rfc3339_ms gives UTC milliseconds", "[ctl][console]") {
  std::int64_t ms = 0;
  REQUIRE(parse_rfc3339_ms("1970-01-01T00:00:00Z", ms));
  CHECK(ms == 0);
  REQUIRE(parse_rfc3339_ms("2026-11-26T13:00:00.250Z", ms));
  CHECK(ms == 1795698000250);
  REQUIRE(parse_rfc3339_ms("2026-11-26T14:00:00+01:00", ms));
  CHECK(ms == 1795698000000);
  REQUIRE(parse_rfc3339_ms("2000-02-29T00:00:00Z", ms));
  CHECK(ms == 951782400000);
  CHECK_FALSE(parse_rfc3339_ms("2026-11-26 13:00:00Z", ms));
  CHECK_FALSE(parse_rfc3339_ms("soon", ms));
}

TEST_CASE("the command table names every console command once",
          "[ctl][console]") {
  strings names;
  for (auto& c : command_table())
    names.push_back(c.name);
  for (const char* n :
       {"status", "tenants", "actor", "passivate", "sync", "watch", "resync",
        "holds", "approve-deletes", "conflicts", "audit", "check", "cluster",
        "shards", "move-shard"})
    CHECK(std::count(names.begin(), names.end(), std::string(n)) == 1);
  CHECK(find_command("move-shard")->args.size() == 2);
  CHECK(find_command("nope") == nullptr);
  auto help = render_command_help();
  CHECK(help.find("move-shard SHARD NODE") != std::string::npos);
  CHECK(help.find("sync USER [--follow]") != std::string::npos);
}

TEST_CASE("completion offers commands, options and ids", "[ctl][console]") {
  id_lists ids;
  ids.tenants = {"t100", "t200"};
  ids.users = {"u1", "u2", "ada@contoso.example"};
  ids.nodes = {"n1", "n2"};
  ids.shards = {"0", "1", "10", "2"};
  ids.actors["calendar"] = {"u1"};
  ids.actors["tenant"] = {"t100"};

  CHECK(complete({}, "sh", ids) == strings{"shards"});
  CHECK(complete({}, "pa", ids) == strings{"passivate"});
  CHECK(complete({}, "qu", ids) == strings{"quit"});
  CHECK(complete({}, "s", ids) == strings{"shards", "status", "sync"});
  CHECK(complete(words("--json"), "cl", ids) == strings{"cluster"});
  CHECK(complete(words("help"), "wa", ids) == strings{"watch"});

  CHECK(complete(words("tenant"), "t", ids) == strings{"t100", "t200"});
  CHECK(complete(words("sync"), "a", ids) == strings{"ada@contoso.example"});
  CHECK(complete(words("sync ada@contoso.example"), "", ids).empty());
  CHECK(complete(words("sync"), "--f", ids) == strings{"--follow"});
  CHECK(complete(words("tenants"), "--", ids)
        == strings{"--all", "--help", "--json", "--limit", "--node", "--token",
                   "--wide"});
  CHECK(complete(words("events --limit"), "", ids).empty());
  CHECK(complete(words("events --limit 5"), "u", ids) == strings{"u1", "u2"});

  CHECK(complete(words("actor"), "c", ids) == strings{"calendar"});
  CHECK(complete(words("actor calendar"), "", ids) == strings{"u1"});
  CHECK(complete(words("passivate tenant"), "t", ids) == strings{"t100"});
  CHECK(complete(words("actor mailbox"), "", ids).empty());

  CHECK(complete(words("move-shard"), "1", ids) == strings{"1", "10"});
  CHECK(complete(words("move-shard 10"), "n", ids) == strings{"n1", "n2"});

  CHECK(completion_kind(words("audit")) == arg_kind::tenant);
  CHECK(completion_kind(words("actor calendar")) == arg_kind::actor_id);
  CHECK(completion_kind({}) == arg_kind::command);
  CHECK(completion_kind(words("nonsense")) == arg_kind::text);
}

TEST_CASE("render_cluster shows the members", "[ctl][console]") {
  simdjson::dom::parser p;
  auto doc = parse(p, R"({"node_id":"n1","shard_count":256,"members":[
        {"id":"n1","cluster_address":"127.0.0.1:7001",
         "http_url":"http://127.0.0.1:8081","up":true,"self":true,"shards":86},
        {"id":"n2","cluster_address":"127.0.0.1:7002",
         "http_url":"http://127.0.0.1:8082","up":false,"self":false,"shards":85}]})");
  CHECK(render_cluster(doc)
        == "this node    n1\n"
           "shard count  256\n"
           "\n"
           "ID  CLUSTER ADDRESS  HTTP                   UP   SELF  SHARDS\n"
           "n1  127.0.0.1:7001   http://127.0.0.1:8081  yes  *         86\n"
           "n2  127.0.0.1:7002   http://127.0.0.1:8082  no             85\n");
}

TEST_CASE("shard_runs groups consecutive shards per node", "[ctl][console]") {
  auto runs = shard_runs({{3, "n2", false},
                          {0, "n1", false},
                          {1, "n1", false},
                          {2, "n1", true},
                          {4, "n2", false},
                          {5, "n1", false}});
  REQUIRE(runs.size() == 4);
  CHECK((runs[0].first == 0 && runs[0].last == 1 && runs[0].node == "n1"
         && !runs[0].moved));
  CHECK((runs[1].first == 2 && runs[1].last == 2 && runs[1].moved));
  CHECK((runs[2].first == 3 && runs[2].last == 4 && runs[2].node == "n2"));
  CHECK((runs[3].first == 5 && runs[3].last == 5 && runs[3].node == "n1"));
  CHECK(shard_runs({}).empty());
}

TEST_CASE("render_shards prints ranges and marks moved shards",
          "[ctl][console]") {
  simdjson::dom::parser p;
  auto doc = parse(p, R"({"shard_count":6,"shards":[
      {"shard":0,"node":"n1","moved":false},{"shard":1,"node":"n1","moved":false},
      {"shard":2,"node":"n2","moved":true},{"shard":3,"node":"n2","moved":false},
      {"shard":4,"node":"n2","moved":false},{"shard":5,"node":"n1","moved":false}]})");
  CHECK(render_shards(doc)
        == "shard count  6\n"
           "per node     n1 3, n2 3\n"
           "\n"
           "SHARDS  NODE  MOVED\n"
           "   0-1  n1\n"
           "     2  n2    *\n"
           "   3-4  n2\n"
           "     5  n1\n"
           "* moved away from the node the hash placed it on\n");
  auto bad = parse(p, R"({"error":"x"})");
  CHECK(render_shards(bad) == "no shard map in the answer\n");
}

TEST_CASE("render_shard_move says what moved", "[ctl][console]") {
  simdjson::dom::parser p;
  auto doc = parse(p, R"({"shard":7,"from":"n1","to":"n2","state":"done"})");
  CHECK(render_shard_move(doc) == "shard 7: n1 -> n2 (done)\n");
}

TEST_CASE("render_actor shows ids, queue, timers and summary",
          "[ctl][console]") {
  simdjson::dom::parser p;
  auto doc = parse(p, R"({"kind":"calendar","id":"u1","tenant":"t1",
      "user":"u1","node":"n1","activated_at":"2026-01-01T10:00:00.000Z",
      "last_message_at":"2026-01-01T10:05:00.000Z","idle_ms":1500,
      "messages":7,"queue":0,"stopping":false,
      "timers":[{"name":"passivation","at":"2026-01-01T10:10:00.000Z",
                 "what":"passivated when idle until then"}],
      "sync_run":{"running":true,"queued":false,"resync_pending":true,
                  "failed_runs":0},
      "summary":{"state":"active","progress":{"done":3,"total":3}}})");
  auto out = render_actor(doc);
  CHECK(out.find("kind             calendar\n") != std::string::npos);
  CHECK(out.find("queue length     0\n") != std::string::npos);
  CHECK(out.find("idle             1.5s\n") != std::string::npos);
  CHECK(out.find("resync pending   yes\n") != std::string::npos);
  CHECK(out.find("progress done    3\n") != std::string::npos);
  CHECK(out.find("passivation  2026-01-01T10:10:00.000Z  passivated when "
                 "idle until then\n")
        != std::string::npos);
  auto idle = parse(p, R"({"kind":"tenant","id":"t1","queue":null,
      "timers":[],"summary":{}})");
  auto out2 = render_actor(idle);
  CHECK(out2.find("queue length     -\n") != std::string::npos);
  CHECK(out2.find("no pending timers\n") != std::string::npos);
  CHECK(out2.find("Sync run") == std::string::npos);
}

TEST_CASE("render_progress draws a bar, counts, state and rate",
          "[ctl][console]") {
  progress_view p;
  p.state = "initial_sync";
  p.done = 120;
  p.total = 480;
  p.rate = 35.25;
  CHECK(render_progress(p, 8)
        == "[##------]  120/480  25%  initial_sync  35.2/s");
  p.rate = -1;
  CHECK(render_progress(p, 0) == "120/480  25%  initial_sync");
  p.done = 600; // more than announced: the bar stays full
  CHECK(render_progress(p, 4) == "[####]  600/480  100%  initial_sync");
  progress_view none;
  none.state = "active";
  CHECK(render_progress(none, 4) == "[----]  0/0  active");
  none.state = "error\x1b[2J";
  none.error = "Graph said\nno";
  CHECK(render_progress(none, 0) == "0/0  error [2J  error: Graph said no");
}

TEST_CASE("render_tenant shows the shard and node on a cluster node",
          "[ctl][console]") {
  simdjson::dom::parser p;
  auto doc = parse(p, R"({"org":{"id":"t1","name":"Acme","edition":"paid"},
      "users":2,"events":5,"active":true,"shard":17,"node":"n2"})");
  auto out = render_tenant(doc);
  CHECK(out.find("shard        17\n") != std::string::npos);
  CHECK(out.find("node         n2\n") != std::string::npos);
  auto old = parse(p, R"({"org":{"id":"t1"},"active":false})");
  CHECK(render_tenant(old).find("shard") == std::string::npos);
}

TEST_CASE("render_sync points at approve-deletes when held", "[ctl][console]") {
  simdjson::dom::parser p;
  auto held = parse(p, R"({"state":"held","last_error":"would delete 12"})");
  CHECK(render_sync(held).find("approve-deletes USER") != std::string::npos);
  auto active = parse(p, R"({"state":"active"})");
  CHECK(render_sync(active).find("approve-deletes") == std::string::npos);
}

TEST_CASE("render_sync shows a block and the events Office 365 refuses",
          "[ctl][console]") {
  simdjson::dom::parser p;
  auto blocked = parse(p, R"({"state":"error","alert":"access_denied",)"
                          R"("last_error":"403 ErrorAccessDenied","skipped":[)"
                          R"({"event":"42","at":"2026-12-06T03:00:00Z",)"
                          R"("status":400,"code":"ErrorInvalidProperty",)"
                          R"("message":"bad property"}]})");
  auto out = render_sync(blocked);
  CHECK(out.find("blocks this user's sync (access_denied)")
        != std::string::npos);
  CHECK(out.find("SKIPPED EVENT") != std::string::npos);
  CHECK(out.find("ErrorInvalidProperty") != std::string::npos);
  CHECK(out.find("bad property") != std::string::npos);
  auto fine = parse(p, R"({"state":"active","alert":null,"skipped":[]})");
  CHECK(render_sync(fine).find("blocks") == std::string::npos);
  CHECK(render_sync(fine).find("SKIPPED") == std::string::npos);
}

TEST_CASE("render_shards with replication prints primaries, followers, "
          "epochs and lag",
          "[ctl][console]") {
  // t15-repl
  simdjson::dom::parser p;
  auto doc = parse(p, R"({"shard_count":4,"shards":[
      {"shard":0,"node":"n1","moved":false,"epoch":1,"followers":["n2"],"role":"primary","sequence":7,"lag":0},
      {"shard":1,"node":"n1","moved":false,"epoch":1,"followers":["n2"],"role":"primary","sequence":9,"lag":3},
      {"shard":2,"node":"n3","moved":false,"epoch":2,"followers":["n1"],"role":"follower","sequence":4},
      {"shard":3,"node":"n2","moved":false,"epoch":1,"followers":[],"role":"none","sequence":0}]})");
  CHECK(render_shards(doc)
        == "shard count  4\n"
           "per primary  n1 2, n2 1, n3 1\n"
           "\n"
           "SHARDS  PRIMARY  FOLLOWERS  EPOCH  HERE      LAG\n"
           "   0-1  n1       n2             1  primary     3\n"
           "     2  n3       n1             2  follower\n"
           "     3  n2       -              1  none\n"
           "HERE: the answering node's role; LAG: batches its followers miss "
           "(shown where it is the primary)\n");
}
