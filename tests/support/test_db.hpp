// Test support: a store opened at a test directory, and a read that says
// "<absent>" for a missing key (storage tests).
#pragma once

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "storage/db.hpp"

namespace crmsync::test {

inline std::unique_ptr<storage::db> open_db(const std::string& path) {
  storage::db_options o;
  o.path = path;
  auto r = storage::db::open(o);
  REQUIRE(r);
  return std::move(*r);
}

inline std::string read_or_absent(storage::db& d, storage::column c,
                                  const std::string& k) {
  std::string v;
  bool found = false;
  REQUIRE_FALSE(d.get(c, k, v, found));
  return found ? v : std::string{"<absent>"};
}

} // namespace crmsync::test
