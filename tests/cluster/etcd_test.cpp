// Unit tests of the etcd client's pure parts (cluster/etcd.hpp) and of the
// shard map as etcd stores it (owners given shard by shard).
#include <catch2/catch.hpp>

#include "cluster/etcd.hpp"
#include "cluster/shards.hpp"

using namespace crmsync::cluster;

TEST_CASE("etcd: base64 is the standard alphabet with padding, both ways") {
  CHECK(etcd::base64("") == "");
  CHECK(etcd::base64("f") == "Zg==");
  CHECK(etcd::base64("fo") == "Zm8=");
  CHECK(etcd::base64("foo") == "Zm9v");
  CHECK(etcd::base64("/a/m1") == "L2EvbTE=");
  CHECK(etcd::base64(std::string("\xff\xfe\0", 3)) == "//4A");
  std::string all;
  for (int i = 0; i < 256; ++i)
    all += static_cast<char>(i);
  std::string back;
  REQUIRE(etcd::unbase64(etcd::base64(all), back));
  CHECK(back == all);
  REQUIRE(etcd::unbase64("Zm8=", back));
  CHECK(back == "fo");
  // Not base64: refused rather than half-decoded.
  CHECK_FALSE(etcd::unbase64("Zm8", back));
  CHECK_FALSE(etcd::unbase64("Z=m8", back));
  CHECK_FALSE(etcd::unbase64("Zm-_", back));
}

TEST_CASE("etcd: the range end of a prefix covers exactly its keys") {
  CHECK(etcd::prefix_end("/crmsync/members/") == "/crmsync/members0");
  CHECK(etcd::prefix_end("a\xff") == "b");
  CHECK(etcd::prefix_end(std::string("\xff\xff", 2)) == std::string(1, '\0'));
}

TEST_CASE("etcd: endpoints parse as http[s]://HOST:PORT lists, mixed "
          "schemes and the rest are refused") {
  std::vector<std::string> out;
  std::string err;
  REQUIRE(etcd::parse_endpoints("http://127.0.0.1:2379", out, err));
  CHECK(out == std::vector<std::string>{"http://127.0.0.1:2379"});
  REQUIRE(etcd::parse_endpoints(
      "http://10.0.0.1:2379/,http://10.0.0.2:2379,http://e3:2379", out, err));
  CHECK(out.size() == 3);
  CHECK(out[0] == "http://10.0.0.1:2379");
  for (auto bad : {"", "127.0.0.1:2379", "http://127.0.0.1:2379,", "ftp://x:1",
                   "http://:2379"}) {
    INFO(bad);
    CHECK_FALSE(etcd::parse_endpoints(bad, out, err));
    CHECK(!err.empty());
  }
  // https is spoken with --etcd-ca-file (node_config checks the files).
  REQUIRE(etcd::parse_endpoints("https://e1:2379/,https://e2:2379", out, err));
  CHECK(out == std::vector<std::string>{"https://e1:2379", "https://e2:2379"});
  CHECK_FALSE(
      etcd::parse_endpoints("https://e1:2379,http://e2:2379", out, err));
  CHECK(err.find("mixes") != std::string::npos);
}

TEST_CASE("a shard map with given owners places each shard as given") {
  std::vector<std::string> owners{"n2", "n1", "n2", "n3"};
  auto m = shard_map::with_owners(owners);
  CHECK(m.shard_count() == 4);
  CHECK(m.members() == std::vector<std::string>{"n1", "n2", "n3"});
  CHECK(m.owner(0) == "n2");
  CHECK(m.owner(3) == "n3");
  CHECK(m.count_of("n2") == 2);
  CHECK_FALSE(m.moved(1));
  m.set_owner(1, "n3");
  CHECK(m.owner(1) == "n3");
  CHECK(m.count_of("n3") == 2);
}
