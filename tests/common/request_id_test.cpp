#include "common/request_id.hpp"

#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "common/crypto.hpp"
#include "tests/support/guid.hpp"

using namespace crmsync;
using crmsync::test::is_guid;

namespace {

address_set trusted(std::vector<std::string> entries) {
  address_set out;
  std::string err;
  REQUIRE(address_set::parse(entries, out, err));
  return out;
}

} // namespace

TEST_CASE("address sets hold addresses and CIDR ranges",
          "[common][request_id]") {
  auto set = trusted({"10.0.0.0/8", " 192.168.1.7 ", "fd00::/8", "::1"});
  CHECK(set.contains("10.1.2.3"));
  CHECK(set.contains("192.168.1.7"));
  CHECK_FALSE(set.contains("192.168.1.8"));
  CHECK_FALSE(set.contains("11.0.0.1"));
  CHECK(set.contains("fd12::1"));
  CHECK(set.contains("::1"));
  CHECK_FALSE(set.contains("fe80::1"));
  // An IPv4-mapped IPv6 peer is its IPv4 address.
  CHECK(set.contains("::ffff:10.9.9.9"));
  CHECK_FALSE(set.contains("not-an-address"));
  CHECK_FALSE(set.contains(""));
  auto odd = trusted({"127.0.0.1/31", "0.0.0.0/0"});
  CHECK(odd.contains("8.8.8.8"));
  CHECK(trusted({}).empty());
  for (std::string bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0/8",
                          "example.com", "10.0.0.0/8x", "1.2.3.4/-1"}) {
    address_set out;
    std::string err;
    CHECK_FALSE(address_set::parse({bad}, out, err));
    CHECK(err.find(bad) != std::string::npos);
  }
  CHECK(host_of("1.2.3.4:5") == "1.2.3.4");
  CHECK(host_of("::1:5") == "::1");
  CHECK(host_of("[::1]:5") == "::1");
}

TEST_CASE("only a trusted proxy chooses a request id, and only a safe one",
          "[common][request_id]") {
  REQUIRE(crypto::init());
  auto proxies = trusted({"10.0.0.0/8"});
  CHECK(choose_request_id("abc-123", "10.0.0.5:4000", proxies) == "abc-123");
  // From anyone else the header is ignored.
  auto fresh = choose_request_id("abc-123", "203.0.113.9:4000", proxies);
  CHECK(fresh != "abc-123");
  CHECK(is_guid(fresh));
  // A trusted proxy's id that could break a log line or a header is not
  // taken either.
  for (std::string bad :
       {std::string{""}, std::string{"a b"}, std::string{"a\"b"},
        std::string{"a\nb"}, std::string{"a\\b"}, std::string{"{\"x\":1}"},
        std::string{"a\x01"}, std::string(129, 'a'), std::string{"é"}}) {
    CHECK_FALSE(valid_request_id(bad));
    auto id = choose_request_id(bad, "10.0.0.5:4000", proxies);
    CHECK(id != bad);
    CHECK(is_guid(id));
  }
  CHECK(valid_request_id(std::string(128, 'a')));
  CHECK(valid_request_id("Root=1-67891233-abcdef012345678912345678"));
  // New ids differ.
  CHECK(crypto::random_guid() != crypto::random_guid());
  CHECK(is_guid(crypto::random_guid()));
}

TEST_CASE("new request ids are GUIDs, each one different",
          "[common][request_id]") {
  REQUIRE(crypto::init());
  std::set<std::string> seen;
  std::string other_thread;
  std::thread t{[&] {
    other_thread = new_request_id();
  }};
  t.join();
  CHECK(is_guid(other_thread));
  seen.insert(other_thread);
  for (int i = 0; i < 100000; ++i) {
    auto id = new_request_id();
    if (!is_guid(id) || !seen.insert(id).second) {
      FAIL("request id " << i << " is " << id);
    }
  }
  // Both halves vary, not only a counter's last digits.
  auto a = new_request_id(), b = new_request_id();
  CHECK(a.substr(0, 8) != b.substr(0, 8));
  CHECK(a.substr(24) != b.substr(24));
}
