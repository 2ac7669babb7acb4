#include "cluster/shard_roles.hpp"

#include <algorithm>

#include <simdjson.h>

#include "cluster/shards.hpp"
#include "protocol/json.hpp"

namespace crmsync::cluster {

void map_record::complete() {
  followers.resize(owners.size());
  epochs.resize(owners.size(), 0);
}

std::string encode_map_record(const map_record& m) {
  json::writer w;
  w.begin_object();
  w.key("shard_count").value(static_cast<uint64_t>(m.owners.size()));
  w.key("owners").begin_array();
  for (auto& o : m.owners)
    w.value(o);
  w.end_array();
  w.key("followers").begin_array();
  for (size_t s = 0; s < m.owners.size(); ++s) {
    w.begin_array();
    if (s < m.followers.size())
      for (auto& f : m.followers[s])
        w.value(f);
    w.end_array();
  }
  w.end_array();
  w.key("epochs").begin_array();
  for (size_t s = 0; s < m.owners.size(); ++s)
    w.value(s < m.epochs.size() ? m.epochs[s] : int64_t{0});
  w.end_array();
  w.end_object();
  return w.take();
}

bool decode_map_record(const std::string& text, map_record& out) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  simdjson::dom::array list;
  if (p.parse(text).get(doc) || doc["owners"].get_array().get(list))
    return false;
  map_record m;
  for (auto o : list) {
    std::string_view id;
    if (o.get_string().get(id) || id.empty())
      return false;
    m.owners.emplace_back(id);
  }
  if (m.owners.empty())
    return false;
  simdjson::dom::array followers;
  if (!doc["followers"].get_array().get(followers)) {
    for (auto f : followers) {
      simdjson::dom::array ids;
      if (f.get_array().get(ids))
        return false;
      m.followers.emplace_back();
      for (auto id : ids) {
        std::string_view s;
        if (id.get_string().get(s) || s.empty())
          return false;
        m.followers.back().emplace_back(s);
      }
    }
    if (m.followers.size() != m.owners.size())
      return false;
  }
  simdjson::dom::array epochs;
  if (!doc["epochs"].get_array().get(epochs)) {
    for (auto e : epochs) {
      int64_t n = 0;
      if (e.get_int64().get(n) || n < 0)
        return false;
      m.epochs.push_back(n);
    }
    if (m.epochs.size() != m.owners.size())
      return false;
  }
  m.complete();
  out = std::move(m);
  return true;
}

std::vector<std::string>
rendezvous_order(uint32_t shard, const std::vector<std::string>& members) {
  std::vector<std::string> left = members;
  std::sort(left.begin(), left.end());
  left.erase(std::unique(left.begin(), left.end()), left.end());
  std::vector<std::string> out;
  while (!left.empty()) {
    auto best = rendezvous_owner(shard, left);
    out.push_back(best);
    left.erase(std::find(left.begin(), left.end(), best));
  }
  return out;
}

map_record initial_map(const std::vector<std::string>& members,
                       uint32_t shard_count, uint32_t factor) {
  map_record m;
  for (uint32_t s = 0; s < shard_count; ++s) {
    auto order = rendezvous_order(s, members);
    m.owners.push_back(order.front());
    std::vector<std::string> f;
    for (size_t i = 1; i < order.size() && i < factor; ++i)
      f.push_back(order[i]);
    m.followers.push_back(std::move(f));
    m.epochs.push_back(1);
  }
  return m;
}

bool repair_followers(map_record& m, const std::string& self,
                      const std::set<std::string>& live, uint32_t factor) {
  m.complete();
  bool changed = false;
  std::vector<std::string> members(live.begin(), live.end());
  for (uint32_t s = 0; s < m.shard_count(); ++s) {
    if (m.owners[s] != self)
      continue;
    auto& f = m.followers[s];
    auto kept = f;
    kept.erase(std::remove_if(kept.begin(), kept.end(),
                              [&](const std::string& id) {
                                return id == self || live.count(id) == 0;
                              }),
               kept.end());
    // Factor 1 has no followers, so no spare either.
    size_t at_most = factor > 1 ? factor : 0;
    if (kept.size() > at_most)
      kept.resize(at_most);
    for (auto& id : rendezvous_order(s, members)) {
      if (kept.size() + 1 >= factor)
        break;
      if (id != self && std::find(kept.begin(), kept.end(), id) == kept.end())
        kept.push_back(id);
    }
    if (kept != f) {
      f = std::move(kept);
      changed = true;
    }
  }
  return changed;
}

void take_ownership(map_record& m, uint32_t shard, const std::string& self) {
  m.complete();
  auto& f = m.followers[shard];
  f.erase(std::remove(f.begin(), f.end(), self), f.end());
  m.owners[shard] = self;
  m.epochs[shard] += 1;
}

bool hand_over(map_record& m, uint32_t shard, const std::string& to) {
  m.complete();
  if (shard >= m.shard_count())
    return false;
  auto& f = m.followers[shard];
  auto at = std::find(f.begin(), f.end(), to);
  if (at == f.end() || to == m.owners[shard])
    return false;
  *at = m.owners[shard];
  m.owners[shard] = to;
  m.epochs[shard] += 1;
  return true;
}

} // namespace crmsync::cluster
