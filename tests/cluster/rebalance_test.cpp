// The rebalancer's planning (cluster/rebalance.hpp, t15-balance), pure:
// given a shard's roles in the map, the eligible members, the followers
// that are caught up and the factor, the next step toward the rendezvous
// layout (owner and `factor` - 1 followers). No etcd, no nodes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include "cluster/rebalance.hpp"
#include "cluster/shard_roles.hpp"

using namespace crmsync::cluster;
using step = cluster_upkeep::step;
using layout = cluster_upkeep::layout;

namespace {

const std::vector<std::string> three{"n1", "n2", "n3"};

step plan(uint32_t shard, const layout& now,
          const std::vector<std::string>& eligible,
          const std::set<std::string>& caught_up, uint32_t factor,
          const std::string& keep = {}) {
  auto want = cluster_upkeep::goal(shard, eligible, factor, keep);
  return cluster_upkeep::plan_step(shard, now, want, eligible, caught_up,
                                   factor);
}

bool is(const step& s, step::kind_t k, const std::string& node) {
  return s.kind == k && s.node == node;
}

} // namespace

TEST_CASE("rebalance plan: the goal is the rendezvous order, owner first, "
          "factor - 1 followers, a pin keeps its owner",
          "[cluster][rebalance]") {
  for (uint32_t s = 0; s < 8; ++s) {
    auto order = rendezvous_order(s, three);
    auto g = cluster_upkeep::goal(s, three, 2);
    CHECK(g.owner == order[0]);
    CHECK(g.followers == std::vector<std::string>{order[1]});
    CHECK(cluster_upkeep::goal(s, three, 3).followers
          == std::vector<std::string>{order[1], order[2]});
    CHECK(cluster_upkeep::goal(s, three, 1).followers.empty());
    // Pinned to its third choice: that one owns, the others follow.
    auto pinned = cluster_upkeep::goal(s, three, 2, order[2]);
    CHECK(pinned.owner == order[2]);
    CHECK(pinned.followers == std::vector<std::string>{order[0]});
    // A pin to a member that is not eligible (drained) counts for nothing.
    CHECK(cluster_upkeep::goal(s, {order[0], order[1]}, 2, order[2]).owner
          == order[0]);
  }
  CHECK(cluster_upkeep::goal(0, {}, 2).owner.empty());
}

TEST_CASE("rebalance plan: a returning first choice is made a follower, "
          "handed the primary role once caught up, and the spare follower "
          "goes only when the others hold the shard",
          "[cluster][rebalance]") {
  uint32_t s = 3;
  auto order = rendezvous_order(s, three);
  auto first = order[0], second = order[1], third = order[2];
  // After a failover while `first` was away: `second` owns, `third`
  // follows. `first` is back.
  layout now{second, {third}};
  CHECK(is(plan(s, now, three, {third}, 2), step::add_follower, first));
  // It follows, still being rebuilt: nothing is handed over yet.
  now.followers = {third, first};
  CHECK(plan(s, now, three, {third}, 2).kind == step::none);
  // Caught up: the primary role goes to it, nothing is copied.
  CHECK(is(plan(s, now, three, {third, first}, 2), step::hand_over, first));
  // The map after the hand-over: `first` owns, the old owner follows in
  // its place; the spare (`third`) goes once `second` holds the shard.
  map_record m;
  m.owners = {second};
  m.followers = {{third, first}};
  m.epochs = {2};
  CHECK_FALSE(hand_over(m, 0, "n9")); // not a follower: nothing changes
  CHECK(m.epochs[0] == 2);
  REQUIRE(hand_over(m, 0, first));
  CHECK(m.owners[0] == first);
  CHECK(m.followers[0] == std::vector<std::string>{third, second});
  CHECK(m.epochs[0] == 3);
  now = layout{first, {third, second}};
  CHECK(plan(s, now, three, {third}, 2).kind == step::none);
  CHECK(
      is(plan(s, now, three, {third, second}, 2), step::drop_follower, third));
  // The layout reached: nothing more to do.
  now = layout{first, {second}};
  CHECK(plan(s, now, three, {second}, 2).kind == step::none);
}

TEST_CASE("rebalance plan: a missing follower is added while the shard has "
          "at most factor - 1, a full shard drops its least wanted first",
          "[cluster][rebalance]") {
  uint32_t s = 5;
  auto order = rendezvous_order(s, three);
  // Owner right, no follower (factor 2): the second choice is added.
  CHECK(
      is(plan(s, {order[0], {}}, three, {}, 2), step::add_follower, order[1]));
  // Owner right, the third choice follows: the second is added (a spare
  // for a moment), then the third dropped once the second holds it.
  CHECK(is(plan(s, {order[0], {order[2]}}, three, {order[2]}, 2),
           step::add_follower, order[1]));
  // Owner wrong and the shard full of followers that are not the goal's
  // owner: room is made first (the drained one, then the lowest weight).
  std::vector<std::string> four{"n1", "n2", "n3", "n4"};
  auto o4 = rendezvous_order(s, four);
  layout full{o4[1], {o4[3], o4[2]}};
  CHECK(is(plan(s, full, four, {o4[2], o4[3]}, 2), step::drop_follower, o4[3]));
  // ... unless that would leave a follower that does not hold the shard
  // as the only copy besides the owner.
  CHECK(plan(s, full, four, {o4[3]}, 2).kind == step::none);
  // A follower that is not eligible any more (drained) is dropped before
  // one that is, even with a higher weight.
  std::vector<std::string> without{o4[0], o4[1], o4[2]};
  layout drained{o4[0], {o4[1], o4[3]}};
  // o4[3] is not eligible; goal follower is o4[1]: o4[3] goes.
  CHECK(is(plan(s, drained, without, {o4[1], o4[3]}, 2), step::drop_follower,
           o4[3]));
}

TEST_CASE("rebalance plan: a drained owner hands its shard to the first "
          "eligible choice, factor 1 moves the rows, a pin stays",
          "[cluster][rebalance]") {
  uint32_t s = 1;
  auto order = rendezvous_order(s, three);
  std::vector<std::string> left{order[1], order[2]};
  // order[0] owns and is drained; order[1] follows and is caught up.
  CHECK(is(plan(s, {order[0], {order[1]}}, left, {order[1]}, 2),
           step::hand_over, order[1]));
  // Factor 1: the only way is a move with the rows.
  CHECK(is(plan(s, {order[0], {}}, left, {}, 1), step::move, order[1]));
  CHECK(plan(s, {order[0], {}}, three, {}, 1).kind == step::none);
  // Pinned to its owner (the third choice): it stays; followers still
  // follow the goal.
  CHECK(plan(s, {order[2], {order[0]}}, three, {order[0]}, 2, order[2]).kind
        == step::none);
  CHECK(is(plan(s, {order[2], {}}, three, {}, 2, order[2]), step::add_follower,
           order[0]));
}

TEST_CASE("rebalance plan: from the map a failover left, steps taken one at "
          "a time reach the rendezvous layout of every shard",
          "[cluster][rebalance]") {
  // Twelve shards, factor 2, n2 back after a failover took its shards.
  constexpr uint32_t count = 12;
  auto m = initial_map(three, count, 2);
  for (uint32_t s = 0; s < count; ++s) {
    if (m.owners[s] == "n2")
      take_ownership(m, s, m.followers[s][0]);
    std::set<std::string> live{"n1", "n3"};
    repair_followers(m, m.owners[s], live, 2);
  }
  for (uint32_t s = 0; s < count; ++s) {
    CHECK(m.owners[s] != "n2");
    CHECK(std::count(m.followers[s].begin(), m.followers[s].end(), "n2") == 0);
  }
  // Every follower catches up between two steps (the snapshot arrived).
  int steps = 0;
  for (; steps < 200; ++steps) {
    bool any = false;
    for (uint32_t s = 0; s < count && !any; ++s) {
      layout now{m.owners[s], m.followers[s]};
      std::set<std::string> up(now.followers.begin(), now.followers.end());
      auto want = cluster_upkeep::goal(s, three, 2);
      auto next = cluster_upkeep::plan_step(s, now, want, three, up, 2);
      switch (next.kind) {
        case step::none:
          continue;
        case step::add_follower:
          m.followers[s].push_back(next.node);
          break;
        case step::drop_follower:
          m.followers[s].erase(std::find(m.followers[s].begin(),
                                         m.followers[s].end(), next.node));
          break;
        case step::hand_over:
          REQUIRE(hand_over(m, s, next.node));
          break;
        case step::move:
          FAIL("a move with rows at factor 2");
      }
      CHECK(m.followers[s].size() <= 2);
      any = true;
    }
    if (!any)
      break;
  }
  auto goal = initial_map(three, count, 2);
  CHECK(m.owners == goal.owners);
  CHECK(m.followers == goal.followers);
  // At most three steps a shard: add, hand over, drop.
  CHECK(steps <= 3 * static_cast<int>(count));
  CHECK(steps > 0);
}
