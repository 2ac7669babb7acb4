#include "common/rate_limit.hpp"

#include <catch2/catch.hpp>

#include <memory>

using namespace crmsync;
using std::chrono::milliseconds;

namespace {

/// A clock the test moves by hand.
struct fake_clock {
  std::shared_ptr<int64_t> now = std::make_shared<int64_t>(1'000'000);
  clock_ms fn() const {
    return [now = now] {
      return *now;
    };
  }
  void advance(int64_t ms) {
    *now += ms;
  }
};

} // namespace

TEST_CASE("token buckets allow a burst, then one start per refill",
          "[rate_limit]") {
  fake_clock clock;
  token_buckets b{{3, 6, 100}, clock.fn()}; // 3 at once, then one per 10 s
  CHECK(b.take("10.0.0.1") == milliseconds{0});
  CHECK(b.take("10.0.0.1") == milliseconds{0});
  CHECK(b.take("10.0.0.1") == milliseconds{0});
  auto wait = b.take("10.0.0.1");
  CHECK(wait == milliseconds{10000});
  // Another key is not affected by the first one's use.
  CHECK(b.take("10.0.0.2") == milliseconds{0});
  clock.advance(4000);
  CHECK(b.take("10.0.0.1") == milliseconds{6000});
  clock.advance(6000);
  CHECK(b.take("10.0.0.1") == milliseconds{0});
  CHECK(b.take("10.0.0.1") > milliseconds{0});
  // A long pause refills up to the burst, not beyond.
  clock.advance(3'600'000);
  for (int i = 0; i < 3; ++i)
    CHECK(b.take("10.0.0.1") == milliseconds{0});
  CHECK(b.take("10.0.0.1") > milliseconds{0});
}

TEST_CASE("token buckets keep at most max_keys keys, evicting the coldest",
          "[rate_limit]") {
  fake_clock clock;
  token_buckets b{{1, 1, 4}, clock.fn()};
  REQUIRE(b.take("hot") == milliseconds{0});
  REQUIRE(b.take("hot") > milliseconds{0});
  for (int i = 0; i < 1000; ++i) {
    b.take("attacker-" + std::to_string(i));
    // The hot key stays recently used while the attack goes on.
    if (i % 2 == 0)
      CHECK(b.take("hot") > milliseconds{0});
    CHECK(b.size() <= 4);
  }
  CHECK(b.size() == 4);
}

TEST_CASE("failure backoff: free failures, then waits that double up to a cap",
          "[rate_limit]") {
  fake_clock clock;
  backoff_config cfg;
  cfg.free_failures = 3;
  cfg.base_wait = milliseconds{1000};
  cfg.max_wait = milliseconds{5000};
  cfg.forget_after = milliseconds{60'000};
  failure_backoff f{cfg, clock.fn()};
  CHECK(f.wait("ann") == milliseconds{0});
  CHECK(f.failed("ann") == 1);
  CHECK(f.failed("ann") == 2);
  CHECK(f.wait("ann") == milliseconds{0});
  CHECK(f.failed("ann") == 3);
  CHECK(f.wait("ann") == milliseconds{1000});
  clock.advance(400);
  CHECK(f.wait("ann") == milliseconds{600});
  clock.advance(600);
  CHECK(f.wait("ann") == milliseconds{0});
  f.failed("ann"); // 4
  CHECK(f.wait("ann") == milliseconds{2000});
  f.failed("ann"); // 5
  CHECK(f.wait("ann") == milliseconds{4000});
  f.failed("ann"); // 6: capped
  CHECK(f.wait("ann") == milliseconds{5000});
  f.failed("ann");
  CHECK(f.wait("ann") == milliseconds{5000});
  // Other keys are unaffected.
  CHECK(f.wait("bob") == milliseconds{0});
  // A success forgets the failures.
  f.succeeded("ann");
  CHECK(f.wait("ann") == milliseconds{0});
  CHECK(f.failed("ann") == 1);
}

TEST_CASE("failure backoff forgets a key after a quiet period",
          "[rate_limit]") {
  fake_clock clock;
  backoff_config cfg;
  cfg.free_failures = 1;
  cfg.forget_after = milliseconds{10'000};
  failure_backoff f{cfg, clock.fn()};
  f.failed("10.0.0.9");
  f.failed("10.0.0.9");
  CHECK(f.wait("10.0.0.9") > milliseconds{0});
  clock.advance(10'000);
  CHECK(f.wait("10.0.0.9") == milliseconds{0});
  CHECK(f.failed("10.0.0.9") == 1);
  CHECK(f.wait_after(1000) == cfg.max_wait);
}

TEST_CASE("failure backoff keeps at most max_keys keys", "[rate_limit]") {
  fake_clock clock;
  backoff_config cfg;
  cfg.free_failures = 0;
  cfg.max_keys = 8;
  failure_backoff f{cfg, clock.fn()};
  for (int i = 0; i < 500; ++i) {
    f.failed("victim");
    f.failed("spray-" + std::to_string(i));
    CHECK(f.size() <= 8);
  }
  // The key under attack stayed in: it is the most recently used.
  CHECK(f.wait("victim") > milliseconds{0});
  CHECK(f.wait("spray-0") == milliseconds{0});
}
