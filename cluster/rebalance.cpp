#include "cluster/rebalance.hpp"

#include <pthread.h>

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
    if (!leaving && p != pins.end() && p->second == self_)
      continue;
    auto to = desired_owner(shard, eligible);
    if (to.empty() || to == self_)
      continue;
    next_move_ = now + spacing_;
    if (auto err = hooks_.move(shard, to)) {
      log::warn("cluster: could not move shard " + std::to_string(shard)
                + " to " + to + " (" + (leaving ? "drain" : "rebalance")
                + "); trying again later: " + to_api_error(err).message);
      return std::nullopt;
    }
    metrics::node().shard_moved(leaving);
    log::info("cluster: moved shard " + std::to_string(shard) + " to " + to
              + (leaving ? " (this node is drained)"
                         : " (rendezvous owner among the members)"));
    return shard;
  }
  return std::nullopt;
}

void cluster_upkeep::run(
    const std::function<bool(std::chrono::milliseconds)>& wait) {
  ::pthread_setname_np(::pthread_self(), "cluster-upkeep");
  do
    round(clock::now());
  while (!wait(std::chrono::seconds(1)));
}

} // namespace crmsync::cluster
