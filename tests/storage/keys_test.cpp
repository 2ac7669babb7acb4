#include "storage/keys.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <vector>

using namespace crmsync;
namespace keys = crmsync::storage::keys;

TEST_CASE("big-endian integers sort numerically", "[storage][keys]") {
  std::vector<uint64_t> values{
      0, 1, 255, 256, 65535, 1ull << 40, ~uint64_t{0} - 1, ~uint64_t{0}};
  std::vector<std::string> encoded;
  for (auto v : values) {
    std::string s;
    keys::put_be64(s, v);
    REQUIRE(s.size() == 8);
    CHECK(keys::get_be64(s, 0) == v);
    encoded.push_back(s);
  }
  CHECK(std::is_sorted(encoded.begin(), encoded.end()));
}

TEST_CASE("signed times keep their order, negatives first", "[storage][keys]") {
  std::vector<int64_t> values{INT64_MIN, -86'400'000,       -1,       0,
                              1,         1'795'000'000'000, INT64_MAX};
  std::vector<std::string> encoded;
  for (auto v : values) {
    std::string s;
    keys::put_be64(s, keys::order_signed(v));
    CHECK(keys::unorder_signed(keys::get_be64(s, 0)) == v);
    encoded.push_back(s);
  }
  CHECK(std::is_sorted(encoded.begin(), encoded.end()));
}

TEST_CASE("every tenant-scoped key starts with the tenant", "[storage][keys]") {
  tenant_id t{0x0102030405060708};
  user_id u{42};
  event_id e{7};
  auto prefix = keys::org(t);
  CHECK(prefix.size() == 8);
  CHECK(keys::user(t, u).compare(0, 8, prefix) == 0);
  CHECK(keys::event(t, e).compare(0, 8, prefix) == 0);
  CHECK(keys::event_index(t, u, 5, e).compare(0, 8, prefix) == 0);
  CHECK(keys::sync_state(t, u, entity_kind::calendar).compare(0, 8, prefix)
        == 0);
  CHECK(keys::sync_state(t, u, entity_kind::mailbox)
        != keys::sync_state(t, u, entity_kind::calendar));
}

TEST_CASE("event index keys round-trip and order by start then id",
          "[storage][keys]") {
  tenant_id t{9};
  user_id owner{10};
  auto a = keys::event_index(t, owner, -5000, event_id{3});
  auto b = keys::event_index(t, owner, 1000, event_id{1});
  auto c = keys::event_index(t, owner, 1000, event_id{2});
  CHECK(a < b);
  CHECK(b < c);
  auto parsed = keys::parse_event_index(a);
  REQUIRE(parsed);
  CHECK(parsed->tenant == t);
  CHECK(parsed->owner == owner);
  CHECK(parsed->start_ms == -5000);
  CHECK(parsed->event == event_id{3});
  CHECK_FALSE(keys::parse_event_index(a.substr(1)));
  // An owner's keys are one contiguous range inside the tenant's.
  auto range_begin = keys::events_of_owner(t, owner);
  auto range_end = keys::prefix_end(range_begin);
  CHECK(range_begin <= a);
  CHECK(c < range_end);
  CHECK(keys::event_index(t, user_id{11}, INT64_MIN, event_id{1}) >= range_end);
}

TEST_CASE("prefix_end is the first key past a prefix", "[storage][keys]") {
  CHECK(keys::prefix_end("ab") == "ac");
  CHECK(keys::prefix_end(std::string("a\xff", 2)) == "b");
  CHECK(keys::prefix_end(std::string("\xff\xff", 2)).empty());
}
