// Global uniqueness claims (e-mail addresses, user ids, Office 365 tenants
// and users) kept in etcd: storage::db asks this before it writes a batch
// with claims, and tells it which claimed lookup rows a batch deleted.
//
// A claim is the key PREFIX "claims/" + the lookup key, holding the lookup
// row's value (the owner tenant and user). It is taken in one etcd
// transaction for all of a batch's claims (each absent, or already held
// with the same value), so two nodes claiming the same address at once
// cannot both win. Thread-safe; each call is a blocking round trip to etcd.
#pragma once

#include <memory>
#include <string>

#include "cluster/etcd.hpp"
#include "storage/db.hpp"

namespace crmsync::cluster {

class etcd_claims : public storage::global_claims {
public:
  etcd_claims(std::shared_ptr<etcd::client> etcd, std::string prefix);

  caf::error take(const std::vector<storage::claim>& claims,
                  std::vector<storage::claim>& made) override;
  void release(const std::vector<storage::claim>& held) override;

  /// The etcd key of a lookup key's claim.
  std::string key_of(const std::string& lookup_key) const {
    return prefix_ + "claims/" + lookup_key;
  }

private:
  std::shared_ptr<etcd::client> etcd_;
  std::string prefix_;
};

} // namespace crmsync::cluster
