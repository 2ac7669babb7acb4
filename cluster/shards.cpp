#include "cluster/shards.hpp"

#include <algorithm>
#include <sstream>

namespace crmsync::cluster {

bool parse_peers(const std::string& text, std::vector<member>& out,
                 std::string& err) {
  out.clear();
  size_t pos = 0;
  while (pos <= text.size() && !text.empty()) {
    auto comma = text.find(',', pos);
    auto item = text.substr(pos, comma == std::string::npos ? std::string::npos
                                                            : comma - pos);
    auto eq = item.find('=');
    auto colon = item.rfind(':');
    member m;
    if (eq == std::string::npos || eq == 0 || colon == std::string::npos
        || colon < eq + 2 || colon + 1 >= item.size()) {
      err = "--peers: expected ID=HOST:PORT, got '" + item + "'";
      return false;
    }
    m.id = item.substr(0, eq);
    m.host = item.substr(eq + 1, colon - eq - 1);
    if (m.host.size() > 2 && m.host.front() == '[' && m.host.back() == ']')
      m.host = m.host.substr(1, m.host.size() - 2); // IPv6 literal
    unsigned long port = 0;
    try {
      size_t used = 0;
      port = std::stoul(item.substr(colon + 1), &used);
      if (used != item.size() - colon - 1)
        port = 0;
    } catch (...) {
      port = 0;
    }
    if (port == 0 || port > 65535) {
      err = "--peers: bad port in '" + item + "'";
      return false;
    }
    m.port = static_cast<uint16_t>(port);
    for (const auto& o : out)
      if (o.id == m.id) {
        err = "--peers: node id '" + m.id + "' appears twice";
        return false;
      }
    out.push_back(std::move(m));
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return true;
}

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t hash_text(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix64(h);
}

uint32_t shard_of(tenant_id t, uint32_t shard_count) {
  return static_cast<uint32_t>(mix64(t.value) % shard_count);
}

const std::string& rendezvous_owner(uint32_t shard,
                                    const std::vector<std::string>& members) {
  const std::string* best = &members.front();
  uint64_t best_weight = 0;
  bool first = true;
  for (const auto& m : members) {
    uint64_t w = mix64(hash_text(m) ^ mix64(uint64_t{shard} + 1));
    if (first || w > best_weight || (w == best_weight && m < *best)) {
      best = &m;
      best_weight = w;
      first = false;
    }
  }
  return *best;
}

shard_map::shard_map(std::vector<std::string> members, uint32_t shard_count)
    : members_(std::move(members)), shard_count_(shard_count) {
  std::sort(members_.begin(), members_.end());
  computed_.reserve(shard_count_);
  for (uint32_t s = 0; s < shard_count_; ++s)
    computed_.push_back(rendezvous_owner(s, members_));
}

shard_map shard_map::with_owners(std::vector<std::string> owners) {
  shard_map m;
  m.members_ = owners;
  std::sort(m.members_.begin(), m.members_.end());
  m.members_.erase(std::unique(m.members_.begin(), m.members_.end()),
                   m.members_.end());
  m.shard_count_ = static_cast<uint32_t>(owners.size());
  m.computed_ = std::move(owners);
  return m;
}

const std::string& shard_map::owner(uint32_t shard) const {
  auto i = overrides_.find(shard);
  return i != overrides_.end() ? i->second : computed_.at(shard);
}

void shard_map::set_owner(uint32_t shard, const std::string& node) {
  if (computed_.at(shard) == node)
    overrides_.erase(shard);
  else
    overrides_[shard] = node;
}

uint32_t shard_map::count_of(const std::string& node) const {
  uint32_t n = 0;
  for (uint32_t s = 0; s < shard_count_; ++s)
    if (owner(s) == node)
      ++n;
  return n;
}

std::string shard_map::encode_overrides() const {
  std::string out;
  for (const auto& [shard, node] : overrides_)
    out += std::to_string(shard) + "=" + node + "\n";
  return out;
}

void shard_map::decode_overrides(const std::string& text) {
  overrides_.clear();
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos || eq == 0)
      continue;
    uint32_t shard = 0;
    try {
      shard = static_cast<uint32_t>(std::stoul(line.substr(0, eq)));
    } catch (...) {
      continue;
    }
    auto node = line.substr(eq + 1);
    if (shard >= shard_count_
        || std::find(members_.begin(), members_.end(), node) == members_.end())
      continue;
    set_owner(shard, node);
  }
}

} // namespace crmsync::cluster
