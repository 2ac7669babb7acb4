#include "cluster/etcd_claims.hpp"

#include "common/log.hpp"
#include "protocol/errors.hpp"

namespace crmsync::cluster {

etcd_claims::etcd_claims(std::shared_ptr<etcd::client> etcd, std::string prefix)
    : etcd_(std::move(etcd)), prefix_(std::move(prefix)) {}

caf::error etcd_claims::take(const std::vector<storage::claim>& claims,
                             std::vector<storage::claim>& made) {
  made.clear();
  // First as if every key were free; when one is not, the failure branch
  // reads them all, and the transaction is asked again with the keys this
  // owner already holds compared by value (a held claim with another value
  // is the conflict). Another claimant may slip in between: a few rounds.
  std::vector<bool> held(claims.size(), false);
  for (int round = 0; round < 4; ++round) {
    std::vector<etcd::compare> cmp;
    std::vector<etcd::operation> success;
    std::vector<etcd::operation> failure;
    for (size_t i = 0; i < claims.size(); ++i) {
      auto key = key_of(claims[i].key);
      if (held[i]) {
        cmp.push_back(etcd::compare::value_is(key, claims[i].value));
      } else {
        cmp.push_back(etcd::compare::absent(key));
        success.push_back(etcd::operation::put(key, claims[i].value));
      }
      failure.push_back(etcd::operation::get(key));
    }
    auto res = etcd_->txn(cmp, success, failure);
    if (!res)
      return res.error();
    if (res->succeeded) {
      for (size_t i = 0; i < claims.size(); ++i)
        if (!held[i])
          made.push_back(claims[i]);
      return caf::none;
    }
    for (size_t i = 0; i < claims.size() && i < res->gets.size(); ++i) {
      auto& found = res->gets[i];
      if (found.empty()) {
        held[i] = false;
        continue;
      }
      if (found.front().value != claims[i].value)
        // The same shape as the database's own refusal: the key in the
        // context, so the tenant actor answers email_taken and the like.
        return make_crm_error(crm_errc::conflict, "claim_taken", claims[i].key);
      held[i] = true;
    }
  }
  return make_crm_error(crm_errc::unavailable, "busy",
                        "the claim kept changing under this request; retry");
}

void etcd_claims::release(const std::vector<storage::claim>& held) {
  for (auto& c : held) {
    auto key = key_of(c.key);
    auto res = etcd_->txn({etcd::compare::value_is(key, c.value)},
                          {etcd::operation::del(key)});
    if (!res)
      log::error("cluster: the claim of a deleted lookup row stays in etcd "
                 "(remove it by hand if it blocks a new owner): "
                 + to_api_error(res.error()).message);
  }
}

} // namespace crmsync::cluster
