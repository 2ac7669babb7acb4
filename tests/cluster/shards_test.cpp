// The shard function and the rendezvous shard map: stable, balanced, and
// moving only what must move when the membership changes.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "cluster/shards.hpp"

using namespace crmsync;
using namespace crmsync::cluster;

namespace {

/// SplitMix64's finalizer written out again from its definition (Steele,
/// Lea, Flood 2014), independently of cluster/shards.cpp: ADR 0005 says
/// a tenant's shard is mix64(tenant id) mod shard count.
uint64_t reference_mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

} // namespace

TEST_CASE("shard_of: known tenant ids land on known shards") {
  // Pinned values, computed apart from the product (the reference above
  // and, for the table, by hand in Python): stored data and every node's
  // routing depend on them never changing.
  CHECK(mix64(0) == 0xe220a8397b1dcdafULL);
  CHECK(mix64(1) == 0x910a2dec89025cc1ULL);
  struct pinned {
    uint64_t tenant;
    uint32_t of_256;
    uint32_t of_16;
  };
  for (auto p : {pinned{1, 193, 1}, pinned{2, 206, 14}, pinned{42, 149, 5},
                 pinned{1000, 72, 8}, pinned{0x0102030405060708ULL, 9, 9},
                 pinned{0xffffffffffffffffULL, 32, 0},
                 pinned{1795701600000ULL, 245, 5}}) {
    INFO("tenant " << p.tenant);
    CHECK(shard_of(tenant_id{p.tenant}, 256) == p.of_256);
    CHECK(shard_of(tenant_id{p.tenant}, 16) == p.of_16);
  }
  // Every id the same as the reference, for several shard counts.
  for (uint32_t count : {1u, 7u, 16u, 256u, 1024u})
    for (uint64_t v = 0; v < 2000; ++v) {
      auto s = shard_of(tenant_id{v * 0x9e3779b1ULL + 17}, count);
      CHECK(s < count);
      CHECK(s == reference_mix64(v * 0x9e3779b1ULL + 17) % count);
    }
}

TEST_CASE("rendezvous owners of known shards are pinned") {
  // Computed apart from the product: owner = the member with the highest
  // mix64(FNV-1a(id), mixed ^ mix64(shard + 1)) (ADR 0005).
  CHECK(hash_text("n1") == 0x5badd04f049599a9ULL);
  CHECK(hash_text("") == 0xc3817c016ba4ff30ULL);
  const std::vector<std::string> three_owners{
      "n2", "n1", "n1", "n2", "n1", "n2", "n1", "n1",
      "n2", "n1", "n3", "n3", "n2", "n3", "n2", "n1"};
  const std::vector<std::string> four_owners{"n2", "n4", "n4", "n2", "n4", "n2",
                                             "n1", "n1", "n2", "n1", "n3", "n3",
                                             "n2", "n3", "n2", "n1"};
  shard_map three({"n1", "n2", "n3"}, 16);
  shard_map four({"n3", "n4", "n1", "n2"}, 16);
  for (uint32_t s = 0; s < 16; ++s) {
    INFO("shard " << s);
    CHECK(three.owner(s) == three_owners[s]);
    CHECK(rendezvous_owner(s, {"n1", "n2", "n3"}) == three_owners[s]);
    CHECK(four.owner(s) == four_owners[s]);
  }
}

TEST_CASE("tenants spread over every shard") {
  std::vector<int> per_shard(256, 0);
  for (uint64_t v = 1; v <= 256 * 100; ++v)
    ++per_shard[shard_of(tenant_id{v * 0x9e37}, 256)];
  for (int n : per_shard) {
    CHECK(n > 50);
    CHECK(n < 150);
  }
}

TEST_CASE("every node computes the same map whatever the member order") {
  shard_map a({"n1", "n2", "n3"}, 256);
  shard_map b({"n3", "n1", "n2"}, 256);
  for (uint32_t s = 0; s < 256; ++s)
    CHECK(a.owner(s) == b.owner(s));
  // Roughly a third each.
  for (auto id : {"n1", "n2", "n3"}) {
    CHECK(a.count_of(id) > 256 / 3 - 30);
    CHECK(a.count_of(id) < 256 / 3 + 30);
  }
  CHECK(a.count_of("n1") + a.count_of("n2") + a.count_of("n3") == 256);
}

TEST_CASE("a new member takes shards only from the others, about 1/n") {
  shard_map three({"n1", "n2", "n3"}, 256);
  shard_map four({"n1", "n2", "n3", "n4"}, 256);
  int moved = 0;
  for (uint32_t s = 0; s < 256; ++s) {
    if (three.owner(s) != four.owner(s)) {
      ++moved;
      CHECK(four.owner(s) == "n4"); // nothing moves between old members
    }
  }
  CHECK(moved > 256 / 4 - 30);
  CHECK(moved < 256 / 4 + 30);
}

TEST_CASE("a move overrides the computed owner and survives encoding") {
  shard_map m({"n1", "n2", "n3"}, 16);
  auto computed = m.owner(5);
  std::string other = computed == "n1" ? "n2" : "n1";
  m.set_owner(5, other);
  CHECK(m.owner(5) == other);
  CHECK(m.moved(5));
  shard_map copy({"n1", "n2", "n3"}, 16);
  copy.decode_overrides(m.encode_overrides());
  CHECK(copy.owner(5) == other);
  // Moving back to the computed owner removes the override.
  m.set_owner(5, computed);
  CHECK_FALSE(m.moved(5));
  CHECK(m.encode_overrides().empty());
  // Entries for unknown nodes or shards out of range are ignored.
  copy.decode_overrides("3=n9\n99=n1\nx=n1\n=n2\n7=n3\n");
  CHECK_FALSE(copy.moved(3));
  CHECK(copy.owner(7) == "n3");
}

TEST_CASE("peer lists (--peers) parse ID=HOST:PORT and refuse the rest") {
  std::vector<member> out;
  std::string err;
  REQUIRE(parse_peers("n2=127.0.0.1:7002,n3=[::1]:7003", out, err));
  REQUIRE(out.size() == 2);
  CHECK(out[0].id == "n2");
  CHECK(out[0].host == "127.0.0.1");
  CHECK(out[0].port == 7002);
  CHECK(out[1].host == "::1");
  CHECK(out[1].port == 7003);
  for (auto bad : {"n2", "n2=host", "=h:1", "n2=h:0", "n2=h:70000", "n2=h:12x",
                   "n2=:80", "n2=h:1,n2=g:2"}) {
    INFO(bad);
    err.clear();
    CHECK_FALSE(parse_peers(bad, out, err));
    CHECK_FALSE(err.empty());
  }
}
