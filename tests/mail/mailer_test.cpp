// The node's mailer (mail/mailer.hpp) against a real graph-emulator, in
// process, over real sockets: e-mail queued in a RocksDB outbox in a
// temporary directory goes out through the asynchronous Graph client,
// many at once at Graph's latency; transient failures are retried, final
// ones recorded; a mailer destroyed with sends in flight records what
// Graph accepted and leaves the rest for the next run.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "graph/client.hpp"
#include "http/url.hpp"
#include "mail/mailer.hpp"
#include "protocol/type_ids.hpp"
#include "storage/codec.hpp"
#include "storage/db.hpp"
#include "storage/keys.hpp"
#include "tests/graph/fixture.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/temp_dir.hpp"

using namespace crmsync;
using namespace std::chrono_literals;
using storage::column;

namespace {

constexpr const char* domain = "mail.example";
constexpr size_t senders = 25;

std::string sender(size_t i) {
  return "user" + std::to_string(i % senders) + "@" + domain;
}

/// A database, an emulator with `senders` mailboxes, an actor system, a
/// Graph client and (once started) the mailer, torn down in the order
/// crmsyncd uses: mailer, client, actor system.
class mail_env {
public:
  mail_env() {
    storage::db_options o;
    o.path = dir_.path() + "/db";
    auto opened = storage::db::open(o);
    REQUIRE(opened);
    db_ = std::move(*opened);
    tenant_ = emu_.seed_tenant_with_users(domain, senders);
    register_types(cfg_);
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    new_client();
  }

  ~mail_env() {
    mailer_.reset();
    graph_.reset();
    sys_.reset();
  }

  graph_test::emulator& emu() {
    return emu_;
  }
  graph::client& graph() {
    return *graph_;
  }
  mail::mailer& mailer() {
    return *mailer_;
  }
  storage::db& db() {
    return *db_;
  }

  /// A fresh Graph client (the old one goes first): one try per call, so
  /// that every failure reaches the mailer.
  void new_client() {
    graph_.reset();
    auto c = emu_.config();
    c.max_attempts = 1;
    graph_ = std::make_unique<graph::client>(std::move(c));
  }

  void start(mail::mailer_options opts = {}) {
    mailer_ = std::make_unique<mail::mailer>(*sys_, *db_, *graph_, opts);
  }
  void stop() {
    mailer_.reset();
  }

  /// Queues e-mail `i` of organization `org` from sender(i) (or `from`)
  /// to rcpt{i}@example.org.
  void queue(size_t i, std::string from = "", tenant_id org = tenant_id{42}) {
    mail_item m;
    m.id = 1000 + i;
    m.org = org;
    m.o365_tenant = tenant_;
    m.sender = from.empty() ? sender(i) : from;
    m.to = "rcpt" + std::to_string(i) + "@example.org";
    m.subject = "mail " + std::to_string(i);
    m.html = "<p>hello</p>";
    storage::write_batch b;
    b.put(column::outbox, storage::keys::tenant_item(org, m.id),
          storage::codec::encode(m));
    REQUIRE_FALSE(db_->write(b));
  }

  std::vector<mail_item> outbox() {
    std::vector<mail_item> out;
    auto err = db_->scan(column::outbox, {}, {},
                         [&](std::string_view, std::string_view v) {
                           mail_item m;
                           REQUIRE(storage::codec::decode(v, m));
                           out.push_back(std::move(m));
                           return true;
                         });
    REQUIRE_FALSE(err);
    return out;
  }

  /// The audit log's entries with this action.
  std::vector<audit_entry> audit(std::string_view action) {
    std::vector<audit_entry> out;
    auto err = db_->scan(column::audit, {}, {},
                         [&](std::string_view, std::string_view v) {
                           audit_entry a;
                           REQUIRE(storage::codec::decode(v, a));
                           if (a.action == action)
                             out.push_back(std::move(a));
                           return true;
                         });
    REQUIRE_FALSE(err);
    return out;
  }

  /// How many e-mails the emulator took for each recipient, from every
  /// sender.
  std::map<std::string, int> delivered() {
    std::map<std::string, int> out;
    for (size_t s = 0; s < senders; ++s) {
      auto r = emu_.get(
          "/_emulator/mail?user=" + http::percent_encode(sender(s)), "");
      REQUIRE(r.status == 200);
      for (size_t i = 0; i < r.size("/value"); ++i)
        ++out[r.str("/value/" + std::to_string(i)
                    + "/message/toRecipients/0/emailAddress/address")];
    }
    return out;
  }

  int delivered_total() {
    int n = 0;
    for (auto& [to, count] : delivered())
      n += count;
    return n;
  }

private:
  test::temp_dir dir_;
  std::unique_ptr<storage::db> db_;
  graph_test::emulator emu_;
  std::string tenant_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::unique_ptr<graph::client> graph_;
  std::unique_ptr<mail::mailer> mailer_;
};

} // namespace

TEST_CASE("mailer: 50 e-mails at 200 ms Graph latency are sent together, "
          "each once",
          "[mailer]") {
  mail_env env;
  env.emu().faults(R"({"latency_ms":200})");
  for (size_t i = 0; i < 50; ++i)
    env.queue(i);
  env.start();

  bool all_sent
      = test::eventually([&] { return env.mailer().stats().sent == 50; }, 20s);
  auto s = env.mailer().stats();
  INFO("sent " << s.sent << ", failed " << s.failed << ", retried "
               << s.retried);
  REQUIRE(all_sent);
  // One e-mail of every sender was started at once (the bound is 64, one
  // per mailbox), and Graph had them all in flight together.
  auto gs = env.graph().stats();
  CHECK(s.max_in_flight == senders);
  CHECK(s.in_flight == 0);
  CHECK(gs.max_in_flight >= senders);
  CHECK(gs.max_in_flight_per_mailbox == 1);
  CHECK(env.outbox().empty());
  CHECK(env.audit("mail.sent").size() == 50);
  auto got = env.delivered();
  CHECK(got.size() == 50);
  for (auto& [to, count] : got) {
    INFO(to);
    CHECK(count == 1);
  }
}

TEST_CASE("mailer: no more e-mails in flight than its bound", "[mailer]") {
  mail_env env;
  env.emu().faults(R"({"latency_ms":50})");
  for (size_t i = 0; i < 50; ++i)
    env.queue(i);
  mail::mailer_options opts;
  opts.max_in_flight = 8;
  env.start(opts);

  bool all_sent
      = test::eventually([&] { return env.mailer().stats().sent == 50; }, 20s);
  REQUIRE(all_sent);
  CHECK(env.mailer().stats().max_in_flight == 8);
  CHECK(env.graph().stats().max_in_flight <= 8);
  CHECK(env.delivered_total() == 50);
}

TEST_CASE("mailer: an e-mail failing transiently is retried, then sent",
          "[mailer]") {
  mail_env env;
  env.emu().faults(R"({"error_rate":1})");
  env.queue(0);
  mail::mailer_options opts;
  opts.retry_delay = 200ms;
  opts.max_attempts = 5;
  env.start(opts);

  // Graph answered 503: the item stays, counts the attempt and waits.
  std::vector<mail_item> waiting;
  bool failed_once = test::eventually(
      [&] {
        waiting = env.outbox();
        return waiting.size() == 1 && waiting[0].attempts >= 1;
      },
      10s);
  REQUIRE(failed_once);
  CHECK_FALSE(waiting[0].failed);
  CHECK(waiting[0].last_error.find("503") != std::string::npos);

  env.emu().faults(R"({"error_rate":0})");
  bool sent
      = test::eventually([&] { return env.mailer().stats().sent == 1; }, 10s);
  REQUIRE(sent);
  auto s = env.mailer().stats();
  CHECK(s.retried >= 1);
  CHECK(s.failed == 0);
  CHECK(env.outbox().empty());
  CHECK(env.audit("mail.failed").empty());
  CHECK(env.audit("mail.sent").size() == 1);
  CHECK(env.delivered_total() == 1);
}

TEST_CASE("mailer: an e-mail that can never be sent is marked failed, "
          "with an audit entry",
          "[mailer]") {
  mail_env env;
  env.queue(0, std::string{"ghost@"} + domain); // no such mailbox: 404
  env.queue(1);
  env.start();

  bool done = test::eventually(
      [&] {
        auto s = env.mailer().stats();
        return s.failed == 1 && s.sent == 1;
      },
      10s);
  REQUIRE(done);
  CHECK(env.mailer().stats().retried == 0);
  auto left = env.outbox();
  REQUIRE(left.size() == 1);
  CHECK(left[0].failed);
  CHECK(left[0].attempts == 1);
  CHECK(left[0].to == "rcpt0@example.org");
  CHECK(left[0].last_error.find("404") != std::string::npos);
  auto failed = env.audit("mail.failed");
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].actor == "mailer");
  CHECK(failed[0].detail.find("\"mail 0\" to rcpt0@example.org was not sent")
        != std::string::npos);
  CHECK(env.audit("mail.sent").size() == 1);
}

TEST_CASE("mailer: destroyed with sends in flight, it records what Graph "
          "accepted and the next run sends the rest, each once",
          "[mailer]") {
  mail_env env;
  env.emu().faults(R"({"latency_ms":500})");
  // One mailbox allowed eight sends: four on the wire (the client's
  // budget), four queued in the client, twelve waiting in the mailer.
  for (size_t i = 0; i < 20; ++i)
    env.queue(i, sender(0));
  mail::mailer_options opts;
  opts.max_in_flight_per_mailbox = 8;
  env.start(opts);
  bool on_the_wire = test::eventually(
      [&] { return env.graph().stats().max_in_flight >= 4; }, 10s);
  REQUIRE(on_the_wire);
  CHECK(env.mailer().stats().in_flight == 8);

  // As crmsyncd stops: the client ends its waits, then the mailer goes.
  env.graph().shutdown();
  env.stop();
  auto left = env.outbox();
  auto taken = env.delivered_total();
  INFO(taken << " delivered, " << left.size() << " left");
  // Every e-mail Graph took is out of the outbox, the others are there,
  // untouched: a stop is not a failed attempt.
  CHECK(taken >= 1);
  CHECK(static_cast<size_t>(taken) + left.size() == 20);
  for (auto& m : left) {
    INFO(m.to);
    CHECK(m.attempts == 0);
    CHECK_FALSE(m.failed);
  }

  env.emu().faults(R"({"latency_ms":0})");
  env.new_client();
  env.start();
  bool rest_sent
      = test::eventually([&] { return env.delivered_total() == 20; }, 20s);
  REQUIRE(rest_sent);
  auto got = env.delivered();
  CHECK(got.size() == 20);
  for (auto& [to, count] : got) {
    INFO(to);
    CHECK(count == 1);
  }
  bool cleared = test::eventually([&] { return env.outbox().empty(); }, 10s);
  CHECK(cleared);
}

TEST_CASE("mailer: busy while an e-mail of the organization is in flight, "
          "e-mail of an organization served elsewhere waits",
          "[mailer]") {
  mail_env env;
  env.emu().faults(R"({"latency_ms":300})");
  const tenant_id here{42};
  const tenant_id moving{43};
  env.start();
  env.mailer().set_owner_check([moving](tenant_id t) { return t != moving; });
  env.queue(0, "", here);
  env.queue(1, "", moving);
  env.mailer().wake();

  bool busy = test::eventually([&] { return env.mailer().busy(here); }, 10s);
  REQUIRE(busy);
  CHECK_FALSE(env.mailer().busy(moving));
  bool sent
      = test::eventually([&] { return env.mailer().stats().sent == 1; }, 10s);
  REQUIRE(sent);
  CHECK_FALSE(env.mailer().busy(here));
  auto left = env.outbox();
  REQUIRE(left.size() == 1);
  CHECK(left[0].org == moving);
  CHECK(left[0].attempts == 0);
  CHECK_FALSE(left[0].failed);
  CHECK(env.delivered_total() == 1);
}

TEST_CASE("mailer: e-mail handed over by its keys is sent without a scan of "
          "the outbox, and keys without a sendable row are dropped",
          "[mailer]") {
  mail_env env;
  // An outbox full of failed e-mail, as operators keep it: a scan reads
  // every row of it.
  for (size_t i = 0; i < 200; ++i) {
    mail_item m;
    m.id = 5000 + i;
    m.org = tenant_id{42};
    m.sender = sender(i);
    m.to = "failed" + std::to_string(i) + "@example.org";
    m.failed = true;
    storage::write_batch b;
    b.put(column::outbox, storage::keys::tenant_item(m.org, m.id),
          storage::codec::encode(m));
    REQUIRE_FALSE(env.db().write(b));
  }
  env.start();
  // The start-up scan, and nothing due.
  REQUIRE(
      test::eventually([&] { return env.mailer().stats().scans == 1; }, 10s));

  std::vector<std::string> keys;
  for (size_t i = 0; i < 30; ++i) {
    env.queue(i);
    keys.push_back(storage::keys::tenant_item(tenant_id{42}, 1000 + i));
  }
  // A key whose row is gone, a failed row's key, and one key twice.
  keys.push_back(storage::keys::tenant_item(tenant_id{42}, 999));
  keys.push_back(storage::keys::tenant_item(tenant_id{42}, 5000));
  keys.push_back(keys.front());
  // Handed over in two parts, as two tenants' writes would.
  std::vector<std::string> second(keys.begin() + 10, keys.end());
  keys.resize(10);
  env.mailer().queued(keys);
  env.mailer().queued(second);

  bool sent
      = test::eventually([&] { return env.mailer().stats().sent == 30; }, 20s);
  REQUIRE(sent);
  auto s = env.mailer().stats();
  CHECK(s.scans == 1);
  CHECK(s.failed == 0);
  CHECK(env.delivered_total() == 30);
  auto got = env.delivered();
  for (auto& [to, count] : got) {
    INFO(to);
    CHECK(count == 1);
  }
  // Only the failed rows are left, untouched.
  auto left = env.outbox();
  CHECK(left.size() == 200);
  for (auto& m : left)
    CHECK(m.failed);
}
