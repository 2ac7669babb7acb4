#include "cluster/claim_sweep.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "common/metrics.hpp"
#include "protocol/errors.hpp"
#include "storage/keys.hpp"

namespace crmsync::cluster {

namespace {

/// A lookup key as a log can show it (binary ids as hex).
std::string printable(const std::string& key) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : key)
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  return out;
}

} // namespace

claim_sweep::claim_sweep(std::shared_ptr<etcd::client> etcd, std::string prefix,
                         std::chrono::seconds grace, storage::db& db,
                         std::function<bool(tenant_id)> owns)
    : etcd_(std::move(etcd))
    , prefix_(std::move(prefix) + "claims/")
    , grace_(grace)
    , db_(db)
    , owns_(std::move(owns)) {}

std::chrono::milliseconds claim_sweep::interval() const {
  auto quarter
      = std::chrono::duration_cast<std::chrono::milliseconds>(grace_) / 4;
  return std::clamp<std::chrono::milliseconds>(quarter, std::chrono::seconds(1),
                                               std::chrono::seconds(60));
}

size_t claim_sweep::run_once(clock::time_point now) {
  auto listed = etcd_->range(prefix_, true);
  if (!listed)
    return 0; // etcd away: the next pass
  std::map<std::string, suspect> still;
  size_t released = 0;
  for (auto& kv : listed->kvs) {
    auto lookup = kv.key.substr(prefix_.size());
    // The owner organization leads every claim's value (keys::org or
    // keys::tenant_user_value).
    if (kv.value.size() < 8)
      continue;
    tenant_id owner{storage::keys::get_be64(kv.value, 0)};
    if (!owns_(owner))
      continue;
    auto orphan = [&] {
      std::string value;
      bool found = false;
      if (db_.get(storage::column::lookup, lookup, value, found))
        return false; // unreadable: not a reason to release
      return !found || value != kv.value;
    };
    if (!orphan())
      continue;
    auto s = suspects_.find(kv.key);
    if (s == suspects_.end() || s->second.mod_revision != kv.mod_revision) {
      still[kv.key] = {kv.mod_revision, now};
      continue;
    }
    if (now - s->second.since < grace_) {
      still[kv.key] = s->second;
      continue;
    }
    // Checked again under the claim lock: a claimed write of this node
    // either committed its row before (kept) or waits until the release
    // is done (and takes the claim anew).
    bool gone = false;
    std::string why;
    db_.under_claim_lock([&] {
      if (!orphan())
        return;
      auto res = etcd_->txn({etcd::compare::mod_is(kv.key, kv.mod_revision)},
                            {etcd::operation::del(kv.key)});
      if (!res)
        why = to_api_error(res.error()).message;
      gone = res && res->succeeded;
    });
    if (gone) {
      ++released;
      metrics::node().claim_released();
      log::warn("cluster: released the uniqueness claim '" + printable(lookup)
                + "' of organization " + std::to_string(owner.value)
                + ": its row has been missing here, its owner, for "
                + std::to_string(grace_.count()) + " s (--claim-grace)");
    } else if (!why.empty()) {
      still[kv.key] = s->second;
    }
  }
  suspects_ = std::move(still);
  return released;
}

} // namespace crmsync::cluster
