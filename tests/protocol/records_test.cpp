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

TEST_CASE("a user's page-session tokens are bounded apart from programs' "
          "and a revoked one no longer matches",
          "[protocol][records][cookie]") {
  crmsync::user_record u;
  auto h = [](char c) {
    return std::string(64, c);
  };
  u.add_signin_token(h('p'), false, 10, 2);
  int64_t at = 20;
  for (char c : {'a', 'b', 'c'})
    u.add_signin_token(h(c), true, at += 10, 2); // issued at 30, 40, 50
  CHECK(u.has_token_hash(h('p')));       // three pages did not push it out
  CHECK_FALSE(u.has_token_hash(h('a'))); // the oldest page's went
  CHECK(u.has_token_hash(h('b')));
  CHECK(u.has_token_hash(h('c')));
  // The marker is not part of a token: "page:"+hash does not match.
  CHECK_FALSE(u.has_token_hash("page:" + h('b')));
  CHECK(u.remove_signin_token(h('b')));
  CHECK_FALSE(u.has_token_hash(h('b')));
  CHECK_FALSE(u.remove_signin_token(h('b')));
  // Each hash kept its own issue time through the removals: with a
  // lifetime of 100, 'p' (issued at 10) ends at 110 and 'c' (50) at 150.
  CHECK(u.token_valid(h('p'), 109, 100));
  CHECK_FALSE(u.token_valid(h('p'), 110, 100));
  CHECK(u.token_valid(h('c'), 149, 100));
  CHECK_FALSE(u.token_valid(h('c'), 150, 100));
  CHECK(token_id("page:" + h('c')) == token_id(h('c')));
  u.add_signin_token(h('q'), false, 60, 2);
  u.add_signin_token(h('r'), false, 70, 2);
  CHECK_FALSE(u.has_token_hash(h('p')));
  CHECK(u.has_token_hash(h('c')));
  CHECK(u.token_valid(h('r'), 169, 100));
  CHECK_FALSE(u.token_valid(h('r'), 170, 100));
}

TEST_CASE("a token made by a sign-in never outlives its place among the "
          "sign-in tokens",
          "[protocol][records][tokens]") {
  auto h = [](char c) {
    return std::string(64, c);
  };
  // The token made with a user who came through Office 365 (install,
  // invitation, join) is their account token and a sign-in token at once.
  crmsync::user_record u;
  u.token_hash = h('m');
  u.add_signin_token(h('m'), false, 10, 2);
  CHECK(u.token_valid(h('m'), 109, 100));
  CHECK_FALSE(u.token_valid(h('m'), 110, 100));
  // Pushed out by newer sign-ins: gone, not valid for good as the account's.
  u.add_signin_token(h('a'), false, 20, 2);
  u.add_signin_token(h('b'), false, 30, 2);
  CHECK(u.token_hash.empty());
  CHECK_FALSE(u.token_valid(h('m'), 50, 100));
  // Removed (a revoked page session's, say): the same.
  crmsync::user_record v;
  v.token_hash = h('m');
  v.add_signin_token(h('m'), false, 10, 5);
  CHECK(v.remove_signin_token(h('m')));
  CHECK_FALSE(v.token_valid(h('m'), 50, 100));
}
