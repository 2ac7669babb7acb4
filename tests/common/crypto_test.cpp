#include "common/crypto.hpp"
#include "common/known_length_secret.hpp"

#include <catch2/catch.hpp>
#include <set>

using namespace crmsync;

TEST_CASE("tokens are random, url-safe and of the asked size",
          "[common][crypto]") {
  REQUIRE(crypto::init());
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto t = crypto::random_token(32);
    CHECK(t.size() == 43);
    CHECK(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                              "vwxyz0123456789-_")
          == std::string::npos);
    seen.insert(t);
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("sha256 matches the standard test vector", "[common][crypto]") {
  REQUIRE(crypto::init());
  CHECK(crypto::sha256_hex("abc")
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("password hashes are salted and verify only the right password",
          "[common][crypto]") {
  REQUIRE(crypto::init());
  auto a = crypto::hash_password("correct horse");
  auto b = crypto::hash_password("correct horse");
  CHECK(a != b); // different salts
  CHECK(a.rfind("$argon2id$", 0) == 0);
  CHECK(crypto::verify_password("correct horse", a));
  CHECK(crypto::verify_password("correct horse", b));
  CHECK_FALSE(crypto::verify_password("correct horsE", a));
  CHECK_FALSE(crypto::verify_password("correct horse", ""));
  CHECK_FALSE(crypto::verify_password("correct horse", "garbage"));
}

TEST_CASE("secret comparison", "[common][crypto]") {
  CHECK(crypto::equal_secret("abc", "abc"));
  CHECK_FALSE(crypto::equal_secret("abc", "abd"));
  CHECK_FALSE(crypto::equal_secret("abc", "abcd"));
  CHECK_FALSE(crypto::equal_secret("", "x"));
  CHECK(crypto::equal_known_length("abc", "abc"));
  CHECK_FALSE(crypto::equal_known_length("abc", "abd"));
  CHECK_FALSE(crypto::equal_known_length("abc", "xbc"));
  CHECK_FALSE(crypto::equal_known_length("abc", "abcd"));
  CHECK_FALSE(crypto::equal_known_length("abc", "ab"));
  CHECK_FALSE(crypto::equal_known_length("abc", ""));
  CHECK_FALSE(crypto::equal_known_length("", "x"));
}
