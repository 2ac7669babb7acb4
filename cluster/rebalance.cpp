#include "cluster/rebalance.hpp"

#include <algorithm>

#include <pthread.h>

#include "cluster/shard_roles.hpp"
#include "cluster/shards.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "protocol/errors.hpp"
#include "protocol/json.hpp"

namespace crmsync::cluster {

cluster_upkeep::cluster_upkeep(std::shared_ptr<etcd::client> etcd,
                               std::string prefix, std::string self,
                               uint32_t rate_per_minute, hooks h,
                               std::unique_ptr<claim_sweep> sweep)
    : etcd_(std::move(etcd))
    , prefix_(std::move(prefix))
    , self_(std::move(self))
    , spacing_(std::chrono::milliseconds(60000)
               / std::max<uint32_t>(rate_per_minute, 1))
    , hooks_(std::move(h))
    , sweep_(std::move(sweep)) {}

std::string cluster_upkeep::desired_owner(uint32_t shard,
                                          std::vector<std::string> eligible) {
  if (eligible.empty())
    return {};
  return rendezvous_owner(shard, eligible);
}

cluster_upkeep::layout
cluster_upkeep::goal(uint32_t shard, const std::vector<std::string>& eligible,
                     uint32_t factor, const std::string& keep_owner) {
  layout out;
  auto order = rendezvous_order(shard, eligible);
  if (order.empty())
    return out;
  out.owner = order.front();
  if (!keep_owner.empty()
      && std::find(order.begin(), order.end(), keep_owner) != order.end())
    out.owner = keep_owner;
  for (auto& id : order)
    if (id != out.owner && out.followers.size() + 1 < factor)
      out.followers.push_back(id);
  return out;
}

cluster_upkeep::step
cluster_upkeep::plan_step(uint32_t shard, const layout& now, const layout& want,
                          const std::vector<std::string>& eligible,
                          const std::set<std::string>& caught_up,
                          uint32_t factor) {
  auto make = [](step::kind_t k, const std::string& id) {
    step out;
    out.kind = k;
    out.node = id;
    return out;
  };
  if (want.owner.empty())
    return {};
  if (factor <= 1)
    return want.owner == now.owner ? step{} : make(step::move, want.owner);
  auto& f = now.followers;
  auto follows = [&](const std::string& id) {
    return std::find(f.begin(), f.end(), id) != f.end();
  };
  auto wanted = [&](const std::string& id) {
    return id == want.owner
           || std::find(want.followers.begin(), want.followers.end(), id)
                  != want.followers.end();
  };
  // The least wanted follower that is not in the goal: not eligible
  // first, then the lowest rendezvous weight.
  auto order = rendezvous_order(shard, eligible);
  auto rank = [&](const std::string& id) {
    auto at = std::find(order.begin(), order.end(), id);
    return at == order.end() ? order.size() : size_t(at - order.begin());
  };
  std::string worst;
  for (auto& id : f)
    if (!wanted(id) && (worst.empty() || rank(id) >= rank(worst)))
      worst = id;
  // Dropped only when the copies left hold the shard: every other
  // follower caught up, or the dropped one is not (then it adds nothing).
  auto drop_if_safe = [&]() -> step {
    if (worst.empty())
      return {};
    bool others = std::all_of(f.begin(), f.end(), [&](const std::string& id) {
      return id == worst || caught_up.count(id) > 0;
    });
    if (others || caught_up.count(worst) == 0)
      return make(step::drop_follower, worst);
    return {};
  };
  size_t enough = factor - 1;
  if (now.owner != want.owner) {
    if (follows(want.owner))
      return caught_up.count(want.owner) > 0
                 ? make(step::hand_over, want.owner)
                 : step{}; // its snapshot is on its way
    if (f.size() <= enough)
      return make(step::add_follower, want.owner);
    return drop_if_safe(); // room for it first
  }
  if (f.size() > enough)
    return drop_if_safe();
  for (auto& id : want.followers)
    if (!follows(id))
      return make(step::add_follower, id);
  return {};
}

std::set<std::string> cluster_upkeep::draining() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return draining_;
}

caf::error cluster_upkeep::set_drain(const std::string& id, bool on) {
  if (!on) {
    auto res = etcd_->txn({}, {etcd::operation::del(drain_key(id))});
    return res ? caf::none : res.error();
  }
  json::writer w;
  w.begin_object();
  w.key("since_ms")
      .value(static_cast<int64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count()));
  w.end_object();
  return etcd_->put(drain_key(id), w.take());
}

caf::expected<bool> cluster_upkeep::drained(const std::string& id) {
  auto got = etcd_->range(drain_key(id));
  if (!got)
    return got.error();
  return !got->kvs.empty();
}

void cluster_upkeep::pin(uint32_t shard, const std::string& to) {
  if (auto err = etcd_->put(pin_key(shard), to))
    log::warn("cluster: shard " + std::to_string(shard)
              + " moved by hand, but its pin could not be written to etcd "
                "(rebalancing may move it again): "
              + to_api_error(err).message);
}

std::optional<uint32_t> cluster_upkeep::round(clock::time_point now) {
  if (sweep_ && now >= next_sweep_) {
    sweep_->run_once(now);
    next_sweep_ = now + sweep_->interval();
  }
  auto drains = etcd_->range(prefix_ + "drain/", true);
  if (!drains)
    return std::nullopt;
  std::set<std::string> drained;
  for (auto& kv : drains->kvs)
    drained.insert(kv.key.substr(prefix_.size() + 6));
  {
    std::lock_guard<std::mutex> guard{mtx_};
    draining_ = drained;
  }
  if (now < next_move_)
    return std::nullopt;
  auto v = hooks_.snapshot();
  if (!v || v->owners.empty())
    return std::nullopt;
  bool leaving = drained.count(self_) > 0;
  std::vector<std::string> eligible;
  for (auto& id : v->connected)
    if (drained.count(id) == 0)
      eligible.push_back(id);
  std::map<uint32_t, std::string> pins;
  auto pinned = etcd_->range(prefix_ + "pins/", true);
  if (!pinned)
    return std::nullopt;
  for (auto& kv : pinned->kvs)
    try {
      pins[static_cast<uint32_t>(std::stoul(kv.key.substr(prefix_.size() + 5)))]
          = kv.value;
    } catch (...) {
    }
  for (uint32_t shard = 0; shard < v->owners.size(); ++shard) {
    if (v->owners[shard] != self_)
      continue;
    auto p = pins.find(shard);
    bool keep = !leaving && p != pins.end() && p->second == self_;
    layout held;
    held.owner = self_;
    if (shard < v->followers.size())
      held.followers = v->followers[shard];
    auto want = goal(shard, eligible, v->factor, keep ? self_ : "");
    auto up = v->caught_up.find(shard);
    auto next = plan_step(shard, held, want, eligible,
                          up == v->caught_up.end() ? std::set<std::string>{}
                                                   : up->second,
                          v->factor);
    if (next.kind == step::none)
      continue;
    next_move_ = now + spacing_;
    if (take(shard, next, leaving))
      return shard;
    return std::nullopt;
  }
  return std::nullopt;
}

bool cluster_upkeep::take(uint32_t shard, const step& next, bool leaving) {
  auto n = std::to_string(shard);
  auto what = next.kind == step::add_follower
                  ? "add " + next.node + " as a follower of shard " + n
              : next.kind == step::drop_follower
                  ? "drop follower " + next.node + " of shard " + n
              : next.kind == step::hand_over
                  ? "hand shard " + n + " over to " + next.node
                  : "move shard " + n + " to " + next.node;
  bool roles
      = next.kind == step::add_follower || next.kind == step::drop_follower;
  auto err = roles ? hooks_.change_follower(shard, next.node,
                                            next.kind == step::add_follower)
                   : hooks_.move(shard, next.node);
  if (err) {
    log::warn("cluster: could not " + what + " ("
              + (leaving ? "drain" : "rebalance")
              + "); trying again later: " + to_api_error(err).message);
    return false;
  }
  if (roles)
    metrics::node().follower_changed(next.kind == step::add_follower);
  else
    metrics::node().shard_moved(leaving);
  log::info("cluster: rebalancer: " + what
            + (leaving ? " (this node is drained)"
                       : " (rendezvous layout among the members)"));
  return true;
}

void cluster_upkeep::run(
    const std::function<bool(std::chrono::milliseconds)>& wait) {
  ::pthread_setname_np(::pthread_self(), "cluster-upkeep");
  // After a step the next round comes as soon as the rate allows (at
  // most a second): a returning node's share takes many small steps.
  const std::chrono::milliseconds second{1000};
  for (;;) {
    bool stepped = round(clock::now()).has_value();
    if (wait(stepped ? std::min(spacing_, second) : second))
      return;
  }
}

} // namespace crmsync::cluster
