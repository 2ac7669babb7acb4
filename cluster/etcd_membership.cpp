#include "cluster/etcd_membership.hpp"

#include <algorithm>

#include <simdjson.h>

#include "common/log.hpp"
#include "protocol/errors.hpp"
#include "protocol/json.hpp"

namespace crmsync::cluster {

namespace {

std::string why(const caf::error& err) {
  return to_api_error(err).message;
}

/// A member's registration: {"id","cluster_address","http_url"}.
bool parse_registration(const etcd::key_value& kv, const std::string& key_of_id,
                        etcd_membership::registered_member& out) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  std::string_view id, address, url;
  if (p.parse(kv.value).get(doc) || doc["id"].get_string().get(id)
      || doc["cluster_address"].get_string().get(address))
    return false;
  if (doc["http_url"].get_string().get(url))
    url = {};
  auto colon = address.rfind(':');
  // A key must name the member it holds.
  if (id.empty() || colon == std::string_view::npos
      || kv.key != key_of_id + std::string{id})
    return false;
  out.m.id = std::string{id};
  out.m.host = std::string{address.substr(0, colon)};
  try {
    auto port = std::stoul(std::string{address.substr(colon + 1)});
    if (port == 0 || port > 65535)
      return false;
    out.m.port = static_cast<uint16_t>(port);
  } catch (...) {
    return false;
  }
  out.http_url = std::string{url};
  return true;
}

} // namespace

etcd_membership::etcd_membership(std::shared_ptr<etcd::client> etcd, settings s,
                                 callbacks cb)
    : etcd_(std::move(etcd)), settings_(std::move(s)), cb_(std::move(cb)) {}

std::string etcd_membership::member_key(const std::string& id) const {
  return settings_.prefix + "members/" + id;
}

std::string etcd_membership::map_key() const {
  return settings_.prefix + "shardmap";
}

std::string
etcd_membership::encode_map(const std::vector<std::string>& owners) {
  json::writer w;
  w.begin_object();
  w.key("shard_count").value(static_cast<uint64_t>(owners.size()));
  w.key("owners").begin_array();
  for (auto& o : owners)
    w.value(o);
  w.end_array();
  w.end_object();
  return w.take();
}

bool etcd_membership::decode_map(const std::string& text,
                                 std::vector<std::string>& owners) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  simdjson::dom::array list;
  if (p.parse(text).get(doc) || doc["owners"].get_array().get(list))
    return false;
  owners.clear();
  for (auto o : list) {
    std::string_view id;
    if (o.get_string().get(id) || id.empty())
      return false;
    owners.emplace_back(id);
  }
  return !owners.empty();
}

bool etcd_membership::register_self() {
  auto granted = etcd_->grant(settings_.lease_ttl.count());
  if (!granted) {
    log::warn("cluster: cannot register in etcd: " + why(granted.error()));
    return false;
  }
  if (auto err
      = etcd_->put(member_key(settings_.node_id), registration_, *granted)) {
    log::warn("cluster: cannot register in etcd: " + why(err));
    etcd_->revoke(*granted);
    return false;
  }
  lease_ = *granted;
  registered_ = true;
  log::info("cluster: registered in etcd as " + settings_.node_id);
  return true;
}

void etcd_membership::create_map(const std::vector<registered_member>& others) {
  std::vector<std::string> ids{settings_.node_id};
  for (auto& o : others)
    ids.push_back(o.m.id);
  if (ids.size() < settings_.initial_members)
    return;
  // Rendezvous over the members there are: every node that saw the same
  // members would write the same map; the first write stays. Each shard's
  // followers are the next members in its rendezvous order (ADR 0008).
  auto first = initial_map(ids, settings_.shard_count,
                           std::max<uint32_t>(1, settings_.replication_factor));
  auto res
      = etcd_->txn({etcd::compare::absent(map_key())},
                   {etcd::operation::put(map_key(), encode_map_record(first))});
  if (res && res->succeeded)
    log::info("cluster: wrote the first shard map ("
              + std::to_string(ids.size()) + " members) to etcd");
}

void etcd_membership::round() {
  auto now = std::chrono::steady_clock::now();
  // Whether the lease was granted or kept alive in this round: it is
  // certainly live until `now` + its TTL, but the node may answer for its
  // shards only once it also read the map of this round (a node back
  // from a pause must not answer from the map it had).
  bool renewed = false;
  if (lease_ == 0) {
    if (!register_self()) {
      reachable_ = false;
      return;
    }
    last_keep_ = now;
    renewed = true;
    if (lapsed_ && cb_.rejoined) {
      // The others dropped this node while its lease was gone: its
      // connections must say hello again. t15-repl.
      lapsed_ = false;
      cb_.rejoined();
    }
  } else if (now - last_keep_
             >= std::chrono::duration_cast<std::chrono::milliseconds>(
                    settings_.lease_ttl)
                    / 3) {
    auto ttl = etcd_->keep_alive(lease_);
    if (!ttl) {
      reachable_ = false;
      return;
    }
    last_keep_ = now;
    if (*ttl <= 0) {
      // Away longer than the lease: the others dropped this node.
      live_until_ = 0;
      log::warn("cluster: the etcd lease lapsed; registering again");
      lease_ = 0;
      registered_ = false;
      lapsed_ = true;
      return round();
    }
    renewed = true;
  }
  auto listed = etcd_->range(settings_.prefix + "members/", true);
  if (!listed) {
    reachable_ = false;
    return;
  }
  std::vector<registered_member> others;
  for (auto& kv : listed->kvs) {
    registered_member r;
    if (parse_registration(kv, member_key(""), r)
        && r.m.id != settings_.node_id)
      others.push_back(std::move(r));
  }
  auto m = etcd_->range(map_key());
  if (m && m->kvs.empty()) {
    create_map(others);
    m = etcd_->range(map_key());
  }
  cb_.members(std::move(others));
  if (!m) {
    reachable_ = false;
    return;
  }
  if (!m->kvs.empty()) {
    map_record rec;
    if (!decode_map_record(m->kvs.front().value, rec))
      log::error("cluster: the shard map in etcd does not parse");
    else
      cb_.map(std::move(rec), m->kvs.front().mod_revision);
  }
  if (renewed)
    live_until_ = (now + settings_.lease_ttl).time_since_epoch().count();
  reachable_ = true;
  if (cb_.after_round && registered_)
    cb_.after_round();
}

void etcd_membership::run(
    const std::string& cluster_address, const std::string& http_url,
    std::chrono::milliseconds poll,
    const std::function<bool(std::chrono::milliseconds)>& wait) {
  json::writer w;
  w.begin_object();
  w.key("id").value(settings_.node_id);
  w.key("cluster_address").value(cluster_address);
  w.key("http_url").value(http_url);
  w.end_object();
  registration_ = w.take();
  do
    round();
  while (!wait(poll));
  if (lease_ != 0)
    etcd_->revoke(lease_);
  registered_ = false;
}

caf::error etcd_membership::change_own_shard(
    uint32_t shard, const std::function<caf::error(map_record&)>& change) {
  auto res = update_map([&](map_record& m, bool& changed) -> caf::error {
    if (shard >= m.shard_count())
      return make_crm_error(crm_errc::unavailable, "node_unavailable",
                            "the shard map in etcd is missing; retry");
    if (m.owners[shard] != settings_.node_id)
      return make_crm_error(crm_errc::unavailable, "node_unavailable",
                            "this node no longer owns the shard; retry");
    if (auto err = change(m))
      return err;
    changed = true;
    return caf::none;
  });
  // This node took the new version (update_map); the others read it when
  // the mover tells them, or at their next poll.
  return res ? caf::none : res.error();
}

caf::error etcd_membership::write_move(uint32_t shard, const std::string& to) {
  return change_own_shard(shard, [&](map_record& m) {
    // A new owner is a new epoch: batches of the old one are refused
    // (ADR 0008); the old owner removes its copy, so it is no follower.
    take_ownership(m, shard, to);
    return caf::error{};
  });
}

caf::error etcd_membership::write_hand_over(uint32_t shard,
                                            const std::string& to) {
  return change_own_shard(shard, [&](map_record& m) {
    if (!hand_over(m, shard, to))
      return make_crm_error(crm_errc::unavailable, "node_unavailable",
                            "node " + to
                                + " no longer follows the shard; retry");
    return caf::error{};
  });
}

caf::error etcd_membership::change_follower(uint32_t shard,
                                            const std::string& id, bool add) {
  return change_own_shard(shard, [&](map_record& m) {
    auto& f = m.followers[shard];
    auto at = std::find(f.begin(), f.end(), id);
    if (add == (at != f.end()) || id == m.owners[shard])
      return make_crm_error(crm_errc::conflict, "conflict",
                            "node " + id
                                + (add ? " follows the shard already"
                                       : " does not follow the shard"));
    if (add)
      f.push_back(id);
    else
      f.erase(at);
    return caf::error{};
  });
}

caf::expected<int64_t> etcd_membership::update_map(
    const std::function<caf::error(map_record&, bool&)>& change) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto m = etcd_->range(map_key());
    if (!m)
      return m.error();
    map_record rec;
    if (m->kvs.empty() || !decode_map_record(m->kvs.front().value, rec))
      return make_crm_error(crm_errc::unavailable, "node_unavailable",
                            "the shard map in etcd is missing; retry");
    bool changed = false;
    if (auto err = change(rec, changed))
      return err;
    if (!changed)
      return int64_t{0};
    auto res = etcd_->txn(
        {etcd::compare::mod_is(map_key(), m->kvs.front().mod_revision)},
        {etcd::operation::put(map_key(), encode_map_record(rec))});
    if (!res)
      return res.error();
    if (res->succeeded) {
      if (cb_.map)
        cb_.map(std::move(rec), res->revision);
      return res->revision;
    }
  }
  return make_crm_error(crm_errc::unavailable, "busy",
                        "the shard map kept changing; retry");
}

bool etcd_membership::read_map_now() {
  auto m = etcd_->range(map_key());
  map_record rec;
  if (!m || m->kvs.empty() || !decode_map_record(m->kvs.front().value, rec))
    return false;
  cb_.map(std::move(rec), m->kvs.front().mod_revision);
  return true;
}

} // namespace crmsync::cluster
