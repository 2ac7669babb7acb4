#include "protocol/records.hpp"

#include <catch2/catch.hpp>

#include "common/crypto.hpp"
#include "protocol/office365.hpp"

using namespace crmsync;

TEST_CASE("invitation tokens: what the node issues, and nothing else",
          "[protocol][invite]") {
  REQUIRE(crypto::init());
  for (int i = 0; i < 200; ++i)
    CHECK(is_invite_token(crypto::random_token(invite_token_bytes)));
  auto good = crypto::random_token(invite_token_bytes);
  CHECK_FALSE(is_invite_token(""));
  CHECK_FALSE(is_invite_token(good.substr(1)));
  CHECK_FALSE(is_invite_token(good + "A"));
  CHECK_FALSE(is_invite_token(std::string(16000, 'A')));
  for (char bad : {'=', '+', '/', '.', ' ', '%', '\0', '\xc3'}) {
    auto t = good;
    t[10] = bad;
    CHECK_FALSE(is_invite_token(t));
  }
}
