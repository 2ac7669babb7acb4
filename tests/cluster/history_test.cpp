// The history checker on hand-made histories: each property it guards is
// violated once on purpose (so the checker can fail), and histories a
// correct system may produce (unknown outcomes either way, concurrent
// writes, eventual writes not yet seen) pass. t15-jepsen.
#include <catch2/catch.hpp>

#include "tests/cluster/history.hpp"

using namespace crmsync::test::history;

namespace {

/// Builds histories with times in milliseconds from an origin.
struct builder {
  clock_type::time_point origin = clock_type::now();
  std::vector<operation> ops;

  clock_type::time_point at(int ms) const {
    return origin + std::chrono::milliseconds(ms);
  }
  /// A write of `key` = `value` (none: a delete) from `from` to `to` ms
  /// (to < 0: it never completed).
  builder& write(std::string key, std::optional<std::string> value, int from,
                 int to, outcome result = outcome::ok, bool eventual = false) {
    operation op;
    op.kind = op_kind::write;
    op.label = value ? "write" : "delete";
    op.key = std::move(key);
    op.value = std::move(value);
    op.invoked = at(from);
    if (to >= 0)
      op.completed = at(to);
    op.result = result;
    op.eventual = eventual;
    ops.push_back(std::move(op));
    return *this;
  }
  builder& read(std::multimap<std::string, std::string> seen, int from, int to,
                bool converged = false) {
    operation op;
    op.kind = op_kind::read;
    op.label = converged ? "final read" : "read";
    op.invoked = at(from);
    op.completed = at(to);
    op.result = outcome::ok;
    op.observed = std::move(seen);
    op.converged = converged;
    ops.push_back(std::move(op));
    return *this;
  }
  std::vector<violation> checked() const {
    auto found = check(ops);
    INFO(describe(found));
    return found;
  }
};

bool only(const std::vector<violation>& found, const std::string& property,
          const std::string& key) {
  INFO(describe(found));
  bool ok = !found.empty();
  for (auto& v : found)
    ok = ok && v.property == property && v.key == key;
  return ok;
}

} // namespace

TEST_CASE("history: a correct history passes", "[history]") {
  builder h;
  h.write("a", "1", 0, 10)
      .write("b", "1", 0, 10)
      .read({{"a", "1"}, {"b", "1"}}, 20, 30)
      .write("a", "2", 40, 50)
      .write("b", std::nullopt, 40, 50)
      .read({{"a", "2"}}, 60, 70)
      .read({{"a", "2"}}, 100, 110, true);
  CHECK(h.checked().empty());
}

TEST_CASE("history: an acknowledged write missing at the end is lost",
          "[history]") {
  builder h;
  h.write("a", "1", 0, 10)
      .write("b", "1", 0, 10)
      .read({{"a", "1"}}, 100, 110, true);
  CHECK(only(h.checked(), "lost", "b"));
  // An older value where a newer one was acknowledged is lost as well.
  builder older;
  older.write("a", "1", 0, 10)
      .write("a", "2", 20, 30)
      .read({{"a", "1"}}, 100, 110, true);
  CHECK(only(older.checked(), "lost", "a"));
  // So is an acknowledged delete that came back.
  builder undeleted;
  undeleted.write("a", "1", 0, 10)
      .write("a", std::nullopt, 20, 30)
      .read({{"a", "1"}}, 100, 110, true);
  CHECK(only(undeleted.checked(), "lost", "a"));
}

TEST_CASE("history: a key seen twice is a duplicate", "[history]") {
  builder h;
  h.write("a", "1", 0, 10).read({{"a", "1"}, {"a", "1"}}, 100, 110, true);
  CHECK(only(h.checked(), "duplicate", "a"));
  // Also when the write's outcome is unknown (a retried create).
  builder retried;
  retried.write("a", "1", 0, -1, outcome::unknown)
      .read({{"a", "1"}, {"a", "1"}}, 100, 110);
  CHECK(only(retried.checked(), "duplicate", "a"));
}

TEST_CASE("history: a read that began after an acknowledgement must see it",
          "[history]") {
  builder h;
  h.write("a", "1", 0, 10).read({}, 20, 30);
  CHECK(only(h.checked(), "stale read", "a"));
  builder older;
  older.write("a", "1", 0, 10)
      .write("a", "2", 20, 30)
      .read({{"a", "1"}}, 40, 50);
  CHECK(only(older.checked(), "stale read", "a"));
  // A read that began before the acknowledgement may miss the write, and
  // one concurrent with an update may see either value.
  builder concurrent;
  concurrent.write("a", "1", 0, 10)
      .read({}, 5, 30)
      .write("a", "2", 40, 60)
      .read({{"a", "1"}}, 45, 50)
      .read({{"a", "2"}}, 45, 50);
  CHECK(concurrent.checked().empty());
}

TEST_CASE("history: a refused write that becomes visible is a phantom",
          "[history]") {
  builder h;
  h.write("a", "1", 0, 10)
      .write("a", "2", 20, 30, outcome::failed)
      .read({{"a", "2"}}, 100, 110, true);
  auto found = h.checked();
  CHECK(only(found, "phantom", "a"));
  // A value nobody wrote is one too.
  builder invented;
  invented.write("a", "1", 0, 10)
      .read({{"a", "1"}, {"x", "9"}}, 100, 110, true);
  CHECK(only(invented.checked(), "phantom", "x"));
}

TEST_CASE("history: a write of unknown outcome may or may not be there",
          "[history]") {
  for (bool applied : {true, false}) {
    builder h;
    h.write("a", "1", 0, 10).write("a", "2", 20, -1, outcome::unknown);
    h.write("b", "1", 20, 25, outcome::unknown);
    if (applied)
      h.read({{"a", "2"}, {"b", "1"}}, 100, 110, true);
    else
      h.read({{"a", "1"}}, 100, 110, true);
    CHECK(h.checked().empty());
  }
  // An unknown write may even land after a later acknowledged one: it
  // may still have been in flight.
  builder late;
  late.write("a", "1", 0, -1, outcome::unknown)
      .write("a", "2", 20, 30)
      .read({{"a", "1"}}, 100, 110, true);
  CHECK(late.checked().empty());
}

TEST_CASE("history: an eventual write binds converged reads only",
          "[history]") {
  builder h;
  h.write("o", "1", 0, 10, outcome::ok, true)
      .read({}, 20, 30)
      .read({{"o", "1"}}, 40, 50);
  CHECK(h.checked().empty());
  h.read({}, 100, 110, true);
  CHECK(only(h.checked(), "lost", "o"));
}

TEST_CASE("history: the recorder timestamps and counts operations",
          "[history]") {
  recorder r;
  auto w = r.invoke_write(1, "create", "a", std::string{"1"});
  auto u = r.invoke_write(1, "update", "a", std::string{"2"});
  r.complete(w, outcome::ok);
  auto x = r.invoke_read(2, "read");
  r.complete_read(x, outcome::ok, {{"a", "1"}});
  auto ops = r.operations();
  REQUIRE(ops.size() == 3);
  CHECK(ops[w].completed >= ops[w].invoked);
  CHECK(ops[u].completed == clock_type::time_point::max());
  CHECK(ops[x].observed.count("a") == 1);
  CHECK(r.writes(outcome::ok) == 1);
  CHECK(r.writes(outcome::unknown) == 1);
  // The update's outcome is unknown: the read may see either value.
  CHECK(check(ops).empty());
}
