// End-to-end: `crmsyncctl backup DIR` against a node under write load, and
// `crmsyncd --restore-from DIR` on a fresh data directory; the refusals of
// the backup routes, of the command and of the restore.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "storage/backup.hpp"
#include "tests/support/api_client.hpp"
#include "tests/support/ctl_runner.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync::e2e;
namespace fs = std::filesystem;

namespace {

std::string url(const test_node& n) {
  return "http://127.0.0.1:" + std::to_string(n.port());
}

ctl_result backup(const test_node& n, const std::string& dir,
                  const std::string& token = admin_token) {
  return run_ctl({"--node", url(n), "--token", token, "backup", dir});
}

struct written {
  std::string id;
  std::string json;
};

} // namespace

TEST_CASE("backup: every write acknowledged before the backup began is in "
          "the node restored from it",
          "[e2e][backup]") {
  test_node node;
  auto org = create_org(node.api(), "Backed Up", "admin@backup.example");
  auto ann = create_user(node.api(), org.admin_token, org.id,
                         "ann@backup.example", "Ann");
  crmsync::test::temp_dir dir;
  const auto target = dir.path() + "/b1";

  // Writers create events as fast as the node takes them, before, during
  // and after the backup; each acknowledged one is kept in order.
  std::mutex mtx;
  std::vector<written> acked;
  std::atomic<bool> stop{false};
  std::atomic<int> refused{0};
  {
    crmsync::test::thread_guard threads([&] { stop = true; });
    for (int t = 0; t < 4; ++t)
      threads.spawn([&, t] {
        api_client c{node.port(), std::chrono::seconds(10)};
        auto& tok = t % 2 ? ann.token : org.admin_token;
        for (int i = 0; !stop; ++i) {
          auto r = c.post(
              tok, user_events_path(org.id, ann.id),
              event_body("w" + std::to_string(t) + "-" + std::to_string(i),
                         "2026-12-20T09:00:00Z", "2026-12-20T10:00:00Z"));
          if (r.status != 201) {
            ++refused;
            continue;
          }
          std::lock_guard<std::mutex> g{mtx};
          acked.push_back({r.str("/id"), r.json()});
        }
      });
    auto enough = [&] {
      std::lock_guard<std::mutex> g{mtx};
      return acked.size() >= 200;
    };
    while (!enough())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    size_t before;
    {
      std::lock_guard<std::mutex> g{mtx};
      before = acked.size();
    }
    auto r = backup(node, target);
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    REQUIRE(r.rc == 0);
    CHECK(r.out.find("backup ") == 0);
    // Writes went on while it was made.
    while (true) {
      std::lock_guard<std::mutex> g{mtx};
      if (acked.size() > before + 50)
        break;
    }
    stop = true;
    threads.join();
    CHECK(refused == 0);

    // The node's copy is gone once the command is through.
    auto open = node.api().get(admin_token, "/admin/v1/backups");
    CHECK(open.status == 200);
    CHECK(open.json().find("\"backups\":[]") != std::string::npos);
    REQUIRE(node.stop() == 0);

    test_node restored({"--restore-from", target});
    auto& api = restored.api();
    size_t missing = 0;
    for (size_t i = 0; i < before; ++i) {
      auto got = api.get(org.admin_token, event_path(org.id, acked[i].id));
      if (got.status != 200 || got.json() != acked[i].json)
        ++missing;
    }
    INFO("acknowledged before the backup: " << before << " of "
                                            << acked.size());
    CHECK(missing == 0);
    // Nothing that was never written: the count is between what was
    // acknowledged before the backup and everything acknowledged.
    auto events = api.get(org.admin_token, org_path(org.id)).u64("/events");
    CHECK(events >= before);
    CHECK(events <= acked.size() + 4);
    // The restored node works, and the same flag on its next start keeps
    // what it wrote since instead of restoring again.
    auto later = api.post(ann.token, user_events_path(org.id, ann.id),
                          event_body("after restore", "2026-12-21T09:00:00Z",
                                     "2026-12-21T10:00:00Z"));
    REQUIRE(later.status == 201);
    REQUIRE(restored.stop() == 0);
    restored.start();
    CHECK(restored.api()
              .get(org.admin_token, event_path(org.id, later.str("/id")))
              .status
          == 200);
  }
}

TEST_CASE("backup: who may not, and what cannot be reached through it",
          "[e2e][backup][security]") {
  test_node node;
  auto org = create_org(node.api(), "Nosy", "admin@nosy.example");
  auto& api = node.api();
  crmsync::test::temp_dir dir;

  // Only the service admin.
  CHECK(api.post("", "/admin/v1/backups", "{}").status == 401);
  auto by_admin = api.post(org.admin_token, "/admin/v1/backups", "{}");
  CHECK(by_admin.status == 403);
  CHECK(api.get(org.admin_token, "/admin/v1/backups").status == 403);
  auto wrong = backup(node, dir.path() + "/w", "not-the-token");
  CHECK(wrong.rc != 0);
  CHECK(wrong.err.find("refused the admin token") != std::string::npos);

  auto made = api.post(admin_token, "/admin/v1/backups", "{}");
  REQUIRE(made.status == 201);
  auto id = made.str("/id");
  auto file = made.str("/files/0/name");
  auto piece = "/admin/v1/backups/" + id + "/files/" + file;
  CHECK(api.get(admin_token, piece).status == 200);
  CHECK(api.get(org.admin_token, piece).status == 403);
  CHECK(api.get("", piece).status == 401);
  // Nothing outside the backup: not the admin token beside the database,
  // not another directory.
  for (const std::string& path : std::vector<std::string>{
           "/admin/v1/backups/" + id + "/files/..%2F..%2Fadmin.token",
           "/admin/v1/backups/" + id + "/files/.hidden",
           "/admin/v1/backups/..%2F..%2F/files/admin.token",
           "/admin/v1/backups/" + id + "/files/NO-SUCH-FILE"}) {
    INFO(path);
    CHECK(api.get(admin_token, path).status == 404);
  }
  CHECK(api.get(admin_token, piece + "?offset=x").status == 400);
  CHECK(api.get(admin_token, piece + "?offset=99999999999").status == 400);
  CHECK(api.get(admin_token, piece + "?length=0").status == 400);
  CHECK(api.get(admin_token, piece + "?length=99999999").status == 400);

  // At most two open; deleting one frees a place.
  auto second = api.post(admin_token, "/admin/v1/backups", "{}");
  REQUIRE(second.status == 201);
  auto third = api.post(admin_token, "/admin/v1/backups", "{}");
  CHECK(third.status == 409);
  CHECK(third.error_code() == "too_many_backups");
  CHECK(api.del(admin_token, "/admin/v1/backups/" + id).status == 204);
  CHECK(api.get(admin_token, piece).status == 404);
  CHECK(api.del(admin_token, "/admin/v1/backups/" + id).status == 404);
  CHECK(api.post(admin_token, "/admin/v1/backups", "{}").status == 201);

  // A directory that holds something is not written into.
  fs::create_directories(dir.path() + "/full");
  std::ofstream(dir.path() + "/full/keep") << "mine";
  auto into_full = backup(node, dir.path() + "/full");
  CHECK(into_full.rc == 2);
  CHECK(slurp(dir.path() + "/full/keep") == "mine");
  CHECK_FALSE(fs::exists(dir.path() + "/full/BACKUP"));
}

TEST_CASE("backup: a restore never replaces a database and never uses a "
          "damaged backup",
          "[e2e][backup]") {
  test_node node;
  auto org = create_org(node.api(), "Careful", "admin@careful.example");
  crmsync::test::temp_dir dir;
  const auto good = dir.path() + "/good";
  REQUIRE(backup(node, good).rc == 0);

  // Into a node that already holds a database: refused, the data intact.
  REQUIRE(node.stop() == 0);
  node.extra_args() = {"--restore-from", good};
  CHECK_THROWS(node.start());
  CHECK(node.log_tail().find("refuses to replace it") != std::string::npos);
  node.extra_args().clear();
  node.start();
  CHECK(node.api().get(org.admin_token, org_path(org.id)).status == 200);

  // A damaged file: refused before anything is put in place.
  const auto bad = dir.path() + "/bad";
  fs::copy(good, bad, fs::copy_options::recursive);
  crmsync::storage::backup_manifest m;
  std::string err;
  REQUIRE(crmsync::storage::parse_manifest(slurp(bad + "/BACKUP"), m, err));
  auto victim = bad + "/rocksdb/" + m.files.front().name;
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    char c = 0;
    f.seekg(0);
    f.get(c);
    f.seekp(0);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  crmsync::test::temp_dir fresh;
  node_process p;
  node_options o;
  o.data_dir = fresh.path() + "/data";
  o.admin_token = admin_token;
  o.extra_args = {"--restore-from", bad};
  CHECK_THROWS(p.start(o));
  CHECK(p.log().find("does not match its SHA-256") != std::string::npos);
  CHECK_FALSE(fs::exists(o.data_dir + "/rocksdb"));

  // Not a backup at all.
  fs::create_directories(dir.path() + "/empty");
  o.extra_args = {"--restore-from", dir.path() + "/empty"};
  node_process q;
  CHECK_THROWS(q.start(o));
  CHECK_FALSE(fs::exists(o.data_dir + "/rocksdb"));
}
