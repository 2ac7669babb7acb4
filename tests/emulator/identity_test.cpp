// graph-emulator's identity platform: the authorization-code sign-in
// (authorize redirect, code redemption, a signed id_token), admin consent
// and OpenID discovery (API.md "graph-emulator", GRAPH-FACTS §8).
//
// The id_token's RS256 signature is checked here with OpenSSL against the
// key published at /{tenant}/discovery/v2.0/keys, as a relying party would,
// and a token altered after signing must fail that check.
#include <catch2/catch.hpp>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <array>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/crypto.hpp"
#include "http/url.hpp"
#include "tests/emulator/harness.hpp"

using namespace crmsync::emulator_test;

namespace {

constexpr const char* callback = "https://crm.example/o365/signin-callback";
constexpr const char* global_admin = "62e90394-69f5-4237-9190-012177145e10";

// -- base64url and JWTs
// ---------------------------------------------------------

/// Decodes unpadded base64url; throws on a character outside the alphabet.
std::string base64url_decode(std::string_view in) {
  static const std::array<int, 256> table = [] {
    std::array<int, 256> t{};
    t.fill(-1);
    const std::string_view alphabet
        = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < alphabet.size(); ++i)
      t[static_cast<unsigned char>(alphabet[i])] = static_cast<int>(i);
    return t;
  }();
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = table[static_cast<unsigned char>(c)];
    if (v < 0)
      throw std::runtime_error("not base64url: " + std::string{in});
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

/// A compact JWS split into its parts, header and payload parsed.
struct jwt {
  explicit jwt(const std::string& compact) {
    auto dot1 = compact.find('.');
    auto dot2 = compact.find('.', dot1 + 1);
    if (dot1 == std::string::npos || dot2 == std::string::npos
        || compact.find('.', dot2 + 1) != std::string::npos)
      throw std::runtime_error("not a compact JWS: " + compact);
    signing_input = compact.substr(0, dot2);
    header_b64 = compact.substr(0, dot1);
    signature = base64url_decode(compact.substr(dot2 + 1));
    header_json = base64url_decode(header_b64);
    payload_json = base64url_decode(compact.substr(dot1 + 1, dot2 - dot1 - 1));
  }

  api_response header() const {
    return api_response::of_json(header_json);
  }
  api_response claims() const {
    return api_response::of_json(payload_json);
  }

  std::string signing_input;
  std::string header_b64;
  std::string header_json;
  std::string payload_json;
  std::string signature;
};

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

struct pkey_free {
  void operator()(EVP_PKEY* k) const {
    EVP_PKEY_free(k);
  }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

/// An RSA public key from a JWK's base64url modulus and exponent.
pkey_ptr rsa_public_key(std::string_view n_b64, std::string_view e_b64) {
  auto n_bytes = base64url_decode(n_b64);
  auto e_bytes = base64url_decode(e_b64);
  BIGNUM* n
      = BN_bin2bn(bytes(n_bytes), static_cast<int>(n_bytes.size()), nullptr);
  BIGNUM* e
      = BN_bin2bn(bytes(e_bytes), static_cast<int>(e_bytes.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  EVP_PKEY* key = nullptr;
  bool ok = n != nullptr && e != nullptr && bld != nullptr && ctx != nullptr
            && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1
            && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1
            && (params = OSSL_PARAM_BLD_to_param(bld)) != nullptr
            && EVP_PKEY_fromdata_init(ctx) == 1
            && EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(e);
  BN_free(n);
  if (!ok) {
    EVP_PKEY_free(key);
    throw std::runtime_error("cannot build an RSA key from the JWK");
  }
  return pkey_ptr{key};
}

/// RSASSA-PKCS1-v1_5 with SHA-256 (JWS "RS256").
bool rs256_verify(EVP_PKEY* key, std::string_view input,
                  std::string_view signature) {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  bool ok
      = md != nullptr
        && EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, key) == 1
        && EVP_DigestVerify(md, bytes(signature), signature.size(),
                            bytes(input), input.size())
               == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

/// The query parameters of a URL (decoded), last value wins.
std::map<std::string, std::string> params_of(std::string_view url) {
  auto q = url.find('?');
  std::map<std::string, std::string> out;
  if (q == std::string_view::npos)
    return out;
  http::query_params ps;
  REQUIRE(http::parse_query(url.substr(q + 1), ps));
  for (auto& [k, v] : ps)
    out[k] = v;
  return out;
}

std::set<std::string> names_of(const std::map<std::string, std::string>& m) {
  std::set<std::string> out;
  for (auto& [k, v] : m)
    out.insert(k);
  return out;
}

// -- the fixture
// ----------------------------------------------------------------

/// Contoso, plus Fabrikam (not consented to the CRM app) with an admin, Fay,
/// and a member, Kim.
class identity : public contoso {
public:
  identity() {
    auto f = seed_tenant(R"({"domain":"fabrikam.example","users":[)"
                         R"({"userPrincipalName":"fay@fabrikam.example",)"
                         R"("displayName":"Fay","mail":"fay@fabrikam.example",)"
                         R"("isAdmin":true},)"
                         R"({"userPrincipalName":"kim@fabrikam.example",)"
                         R"("displayName":"Kim"}]})");
    fabrikam_id = f.str("/id");
    fay_id = f.str("/users/0/id");
    kim_id = f.str("/users/1/id");
  }

  api_response authorize(std::string_view tenant, std::string_view login_hint,
                         std::string_view state = "st-1",
                         std::string_view nonce = {},
                         std::string_view redirect_uri = callback,
                         std::string_view client_id = crm_client,
                         std::string_view response_type = "code") {
    std::vector<std::pair<std::string, std::string>> q{
        {"client_id", std::string{client_id}},
        {"response_type", std::string{response_type}},
        {"scope", "openid profile email"},
        {"redirect_uri", std::string{redirect_uri}},
        {"state", std::string{state}},
        {"login_hint", std::string{login_hint}}};
    if (!nonce.empty())
      q.emplace_back("nonce", std::string{nonce});
    return send("GET", "/" + std::string{tenant} + "/oauth2/v2.0/authorize?"
                           + form(q));
  }

  /// The query parameters of a 302 back to the callback URL.
  std::map<std::string, std::string> redirected(const api_response& r) {
    E2E_REQUIRE_STATUS(r, 302);
    auto location = r.header("Location");
    INFO("Location " << location);
    CHECK(starts_with(location, std::string{callback} + "?"));
    return params_of(location);
  }

  /// The code of a successful sign-in redirect to `redirect_uri`.
  std::string sign_in(std::string_view tenant, std::string_view login_hint,
                      std::string_view nonce = {},
                      std::string_view redirect_uri = callback) {
    auto r = authorize(tenant, login_hint, "st-1", nonce, redirect_uri);
    E2E_REQUIRE_STATUS(r, 302);
    auto p = params_of(r.header("Location"));
    INFO("Location " << r.header("Location"));
    REQUIRE(p.count("code") == 1);
    return p["code"];
  }

  api_response redeem(std::string_view tenant, std::string_view code,
                      std::string_view redirect_uri = callback,
                      std::string_view client_id = crm_client,
                      std::string_view secret = crm_secret) {
    return request_token(tenant,
                         form({{"client_id", std::string{client_id}},
                               {"client_secret", std::string{secret}},
                               {"grant_type", "authorization_code"},
                               {"code", std::string{code}},
                               {"redirect_uri", std::string{redirect_uri}},
                               {"scope", "openid profile email"}}));
  }

  /// The id_token of a sign-in of `login_hint` at `tenant`.
  jwt id_token_of(std::string_view tenant, std::string_view login_hint,
                  std::string_view nonce = {}) {
    auto r = redeem(tenant, sign_in(tenant, login_hint, nonce));
    E2E_REQUIRE_STATUS(r, 200);
    return jwt{r.str("/id_token")};
  }

  api_response admin_consent(std::string_view tenant,
                             std::string_view login_hint,
                             std::string_view client_id = crm_client) {
    return send("GET", "/" + std::string{tenant} + "/adminconsent?"
                           + form({{"client_id", std::string{client_id}},
                                   {"state", "consent-7"},
                                   {"redirect_uri", callback},
                                   {"login_hint", std::string{login_hint}}}));
  }

  api_response keys(std::string_view tenant) {
    auto r = send("GET", "/" + std::string{tenant} + "/discovery/v2.0/keys");
    E2E_REQUIRE_STATUS(r, 200);
    return r;
  }

  /// The published key with this kid.
  pkey_ptr signing_key(std::string_view kid) {
    auto k = keys("common");
    for (size_t i = 0; i < k.size("/keys"); ++i) {
      auto p = "/keys/" + std::to_string(i);
      if (k.str(p + "/kid") == kid)
        return rsa_public_key(k.str(p + "/n"), k.str(p + "/e"));
    }
    FAIL("no key " << kid << " in " << k.body);
    return nullptr;
  }

  std::string fabrikam_id;
  std::string fay_id;
  std::string kim_id;
};

} // namespace

// == authorize ===============================================================

TEST_CASE_METHOD(identity,
                 "identity: authorize redirects with a code and the state",
                 "[emulator][identity]") {
  const std::string state = "o365 install/42&next=a b";
  for (std::string tenant :
       {std::string{contoso_id}, std::string{"contoso.example"},
        std::string{"CONTOSO.example"}, std::string{"organizations"},
        std::string{"common"}}) {
    INFO("tenant " << tenant);
    auto p = redirected(authorize(tenant, "admin@CONTOSO.example", state));
    CHECK(names_of(p)
          == std::set<std::string>{"code", "state", "session_state"});
    CHECK(p["code"].size() >= 32);
    CHECK(p["state"] == state);
    CHECK(is_guid(p["session_state"]));
  }
  // Every sign-in gets its own code.
  CHECK(sign_in("contoso.example", "alex@contoso.example")
        != sign_in("contoso.example", "alex@contoso.example"));
  // A redirect URI with a query keeps it.
  auto r = authorize("contoso.example", "alex@contoso.example", "s", {},
                     "https://crm.example/cb?from=install");
  E2E_REQUIRE_STATUS(r, 302);
  CHECK(starts_with(r.header("Location"),
                    "https://crm.example/cb?from=install&code="));
  CHECK(params_of(r.header("Location"))["from"] == "install");
}

TEST_CASE_METHOD(identity,
                 "identity: without login_hint a browser picks the person on a "
                 "page",
                 "[emulator][identity]") {
  std::vector<std::pair<std::string, std::string>> q{
      {"client_id", std::string{crm_client}},
      {"response_type", "code"},
      {"redirect_uri", std::string{callback}},
      {"state", "st-\"<x>"}};
  auto page = send("GET", "/fabrikam.example/oauth2/v2.0/authorize?" + form(q));
  E2E_REQUIRE_STATUS(page, 200);
  CHECK(starts_with(page.header("Content-Type"), "text/html"));
  CHECK(page.header("Content-Security-Policy").find("default-src 'none'")
        != std::string::npos);
  // The tenant's people, and nobody of another tenant.
  CHECK(page.body.find("value=\"fay@fabrikam.example\"") != std::string::npos);
  CHECK(page.body.find("value=\"kim@fabrikam.example\"") != std::string::npos);
  CHECK(page.body.find("contoso.example") == std::string::npos);
  // Every parameter goes back, escaped.
  CHECK(page.body.find("name=\"state\" value=\"st-&quot;&lt;x&gt;\"")
        != std::string::npos);
  CHECK(page.body.find("<x>") == std::string::npos);
  // Admin consent offers administrators only.
  q.pop_back();
  q.emplace_back("state", "consent-1");
  auto consent = send("GET", "/fabrikam.example/adminconsent?" + form(q));
  E2E_REQUIRE_STATUS(consent, 200);
  CHECK(consent.body.find("value=\"fay@fabrikam.example\"")
        != std::string::npos);
  CHECK(consent.body.find("kim@fabrikam.example") == std::string::npos);
  // The buttons submit a form that the endpoint redirects to the client:
  // a browser holds every hop to form-action, so the client's origin is
  // allowed, and nothing else (the policy ends right after it).
  CHECK(page.header("Content-Security-Policy")
            .find("form-action 'self' https://crm.example;")
        != std::string::npos);
  // A redirect URI that is not a plain origin widens nothing.
  q[2].second = "https://crm.example;script-src *";
  auto odd = send("GET", "/fabrikam.example/adminconsent?" + form(q));
  E2E_REQUIRE_STATUS(odd, 200);
  CHECK(odd.header("Content-Security-Policy").find("form-action 'self';")
        != std::string::npos);
  CHECK(odd.header("Content-Security-Policy").find("script-src")
        == std::string::npos);
  // An empty login_hint is still refused as before: programs see no page.
  auto empty = redirected(authorize("fabrikam.example", ""));
  CHECK(empty["error"] == "invalid_request");
}

TEST_CASE_METHOD(identity, "identity: authorize refusals",
                 "[emulator][identity]") {
  auto check_redirected_error = [&](const api_response& r,
                                    std::string_view error, int aadsts) {
    auto p = redirected(r);
    CHECK(names_of(p)
          == std::set<std::string>{"error", "error_description", "state"});
    CHECK(p["error"] == error);
    CHECK(starts_with(p["error_description"],
                      "AADSTS" + std::to_string(aadsts) + ": "));
    CHECK(p["state"] == "st-1");
  };
  SECTION("an unknown login_hint") {
    for (std::string tenant : {"contoso.example", "organizations", "common"}) {
      INFO("tenant " << tenant);
      check_redirected_error(authorize(tenant, "ghost@contoso.example"),
                             "invalid_request", 50034);
    }
  }
  SECTION("a user of another tenant") {
    check_redirected_error(authorize("contoso.example", "kim@fabrikam.example"),
                           "invalid_request", 50034);
    check_redirected_error(authorize(fabrikam_id, "alex@contoso.example"),
                           "invalid_request", 50034);
  }
  SECTION("another response_type") {
    check_redirected_error(authorize("contoso.example", "alex@contoso.example",
                                     "st-1", {}, callback, crm_client, "token"),
                           "unsupported_response_type", 700054);
  }
  SECTION("an unknown client is not redirected") {
    auto r = authorize("contoso.example", "alex@contoso.example", "st-1", {},
                       callback, "no-such-app");
    check_oauth_error(r, 400, "unauthorized_client", 700016);
    CHECK(r.header("Location").empty());
  }
  SECTION("no redirect_uri") {
    auto r = send("GET", "/contoso.example/oauth2/v2.0/authorize?"
                             + form({{"client_id", crm_client},
                                     {"response_type", "code"},
                                     {"login_hint", "alex@contoso.example"}}));
    check_oauth_error(r, 400, "invalid_request", 900144);
  }
}

// == the code and the id_token ===============================================

TEST_CASE_METHOD(identity,
                 "identity: the code redeems for tokens with a signed id_token",
                 "[emulator][identity][jwt]") {
  auto before = now() / 1000;
  auto r
      = redeem("contoso.example",
               sign_in("contoso.example", "admin@contoso.example", "n-0815"));
  E2E_REQUIRE_STATUS(r, 200);
  CHECK(r.str("/token_type") == "Bearer");
  CHECK(r.i64("/expires_in") == 3600);
  CHECK(r.str("/access_token").size() > 20);
  CHECK(r.str("/access_token") != tok);

  jwt id{r.str("/id_token")};
  auto h = id.header();
  CHECK(h.str("/alg") == "RS256");
  CHECK(h.str("/typ") == "JWT");
  auto kid = h.str("/kid");
  CHECK_FALSE(kid.empty());

  auto c = id.claims();
  INFO("claims " << id.payload_json);
  CHECK(c.str("/aud") == crm_client);
  CHECK(c.str("/iss") == origin() + "/" + contoso_id + "/v2.0");
  CHECK(ends_with(c.str("/iss"), "/" + std::string{contoso_id} + "/v2.0"));
  CHECK(c.str("/tid") == contoso_id);
  CHECK(c.str("/oid") == admin_id);
  CHECK(c.str("/preferred_username") == "Admin@contoso.example");
  CHECK(c.str("/email") == "admin@contoso.example");
  CHECK(c.str("/name") == "Ada Admin");
  CHECK(c.str("/nonce") == "n-0815");
  CHECK(c.str("/ver") == "2.0");
  CHECK_FALSE(c.str("/sub").empty());
  CHECK(c.i64("/iat") == before);
  CHECK(c.i64("/exp") > c.i64("/iat"));
  CHECK(c.i64("/exp") == c.i64("/iat") + 3600);
  REQUIRE(c.size("/wids") == 1);
  CHECK(c.str("/wids/0") == global_admin);

  // The signature verifies with the published key...
  auto key = signing_key(kid);
  CHECK(rs256_verify(key.get(), id.signing_input, id.signature));
  // ...and fails for a payload changed after signing,
  auto forged = id.payload_json;
  auto at = forged.find(admin_id);
  REQUIRE(at != std::string::npos);
  forged.replace(at, std::string{admin_id}.size(),
                 "ffffffff-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
  CHECK_FALSE(rs256_verify(
      key.get(), id.header_b64 + "." + crmsync::crypto::base64url(forged),
      id.signature));
  // a changed signature, or another signing input.
  auto bad_sig = id.signature;
  bad_sig[bad_sig.size() / 2] ^= 0x01;
  CHECK_FALSE(rs256_verify(key.get(), id.signing_input, bad_sig));
  CHECK_FALSE(rs256_verify(key.get(), id.signing_input + "x", id.signature));
}

TEST_CASE_METHOD(identity, "identity: id_token claims per person",
                 "[emulator][identity][jwt]") {
  SECTION("a member without mail, signed in without a nonce") {
    auto id = id_token_of("contoso.example", "alex@contoso.example");
    auto c = id.claims();
    INFO("claims " << id.payload_json);
    CHECK(c.str("/tid") == contoso_id);
    CHECK(c.str("/oid") == alex_id);
    CHECK(c.str("/preferred_username") == "alex@contoso.example");
    CHECK(c.str("/email") == "alex@contoso.example");
    CHECK_FALSE(c.has("/nonce"));
    CHECK_FALSE(c.has("/wids"));
    CHECK(rs256_verify(signing_key(id.header().str("/kid")).get(),
                       id.signing_input, id.signature));
  }
  SECTION("another tenant's admin through organizations") {
    auto id = id_token_of("organizations", "fay@fabrikam.example", "n-2");
    auto c = id.claims();
    INFO("claims " << id.payload_json);
    CHECK(c.str("/tid") == fabrikam_id);
    CHECK(c.str("/iss") == origin() + "/" + fabrikam_id + "/v2.0");
    CHECK(c.str("/oid") == fay_id);
    CHECK(c.str("/aud") == crm_client);
    CHECK(c.str("/nonce") == "n-2");
    REQUIRE(c.size("/wids") == 1);
    CHECK(c.str("/wids/0") == global_admin);
  }
  SECTION("another tenant's member through common") {
    auto id = id_token_of("common", "kim@fabrikam.example");
    auto c = id.claims();
    CHECK(c.str("/tid") == fabrikam_id);
    CHECK(c.str("/oid") == kim_id);
    CHECK_FALSE(c.has("/wids"));
  }
  SECTION("the subject is stable per person and app") {
    auto a = id_token_of("contoso.example", "alex@contoso.example").claims();
    auto b = id_token_of("organizations", "alex@contoso.example").claims();
    auto admin
        = id_token_of("contoso.example", "admin@contoso.example").claims();
    CHECK(a.str("/sub") == b.str("/sub"));
    CHECK(a.str("/sub") != admin.str("/sub"));
  }
}

TEST_CASE_METHOD(identity,
                 "identity: a code is single-use and bound to its client, "
                 "redirect_uri and time",
                 "[emulator][identity]") {
  SECTION("a second redemption") {
    auto code = sign_in("contoso.example", "alex@contoso.example");
    E2E_REQUIRE_STATUS(redeem("contoso.example", code), 200);
    check_oauth_error(redeem("contoso.example", code), 400, "invalid_grant",
                      70008);
  }
  SECTION("another redirect_uri") {
    auto code = sign_in("contoso.example", "alex@contoso.example");
    check_oauth_error(
        redeem("contoso.example", code, "https://evil.example/callback"), 400,
        "invalid_grant", 50148);
  }
  SECTION("a wrong secret, then the right one") {
    auto code = sign_in("contoso.example", "alex@contoso.example");
    check_oauth_error(
        redeem("contoso.example", code, callback, crm_client, "not-the-secret"),
        401, "invalid_client", 7000215);
    E2E_REQUIRE_STATUS(redeem("contoso.example", code), 200);
  }
  SECTION("another app") {
    seed_app("other-app", "other-secret", "[]");
    auto code = sign_in("contoso.example", "alex@contoso.example");
    check_oauth_error(
        redeem("contoso.example", code, callback, "other-app", "other-secret"),
        400, "invalid_grant", 70008);
  }
  SECTION("an unknown app") {
    auto code = sign_in("contoso.example", "alex@contoso.example");
    check_oauth_error(
        redeem("contoso.example", code, callback, "no-such-app", "x"), 400,
        "unauthorized_client", 700016);
  }
  SECTION("ten minutes later") {
    auto code = sign_in("contoso.example", "alex@contoso.example");
    advance(10min);
    check_oauth_error(redeem("contoso.example", code), 400, "invalid_grant",
                      70008);
  }
  SECTION("just before ten minutes") {
    auto code = sign_in("contoso.example", "alex@contoso.example");
    advance(10min - 1ms);
    E2E_REQUIRE_STATUS(redeem("contoso.example", code), 200);
  }
  SECTION("redeemed at another tenant") {
    auto code = sign_in("contoso.example", "alex@contoso.example");
    check_oauth_error(redeem("fabrikam.example", code), 400, "invalid_grant",
                      50020);
  }
  SECTION("redeemed at organizations") {
    auto code = sign_in("contoso.example", "alex@contoso.example");
    E2E_REQUIRE_STATUS(redeem("organizations", code), 200);
  }
  SECTION("a made-up code") {
    check_oauth_error(redeem("contoso.example", "not-a-code"), 400,
                      "invalid_grant", 70008);
  }
}

// == admin consent ===========================================================

TEST_CASE_METHOD(identity, "identity: admin consent by a tenant's admin",
                 "[emulator][identity][consent]") {
  // Fabrikam has not consented: no app-only token for it.
  auto check_no_consent = [&] {
    check_oauth_error(request_token("fabrikam.example",
                                    client_credentials(crm_client, crm_secret)),
                      400, "unauthorized_client", 700016);
  };
  // A refusal redirects back with access_denied and the state.
  auto check_denied = [&](const api_response& r) {
    auto p = redirected(r);
    CHECK(names_of(p)
          == std::set<std::string>{"error", "error_description", "state"});
    CHECK(p["error"] == "access_denied");
    CHECK(starts_with(p["error_description"], "AADSTS90094: "));
    CHECK(p["state"] == "consent-7");
    check_no_consent();
  };
  check_no_consent();

  SECTION("the admin consents") {
    for (std::string tenant :
         {std::string{"fabrikam.example"}, std::string{"organizations"}}) {
      INFO("tenant " << tenant);
      auto p = redirected(admin_consent(tenant, "fay@fabrikam.example"));
      CHECK(names_of(p)
            == std::set<std::string>{"admin_consent", "tenant", "state"});
      CHECK(p["admin_consent"] == "True");
      CHECK(p["tenant"] == fabrikam_id);
      CHECK(p["state"] == "consent-7");
    }
    auto t = token(fabrikam_id, crm_client, crm_secret);
    auto users = get("/v1.0/users", t);
    E2E_REQUIRE_STATUS(users, 200);
    CHECK(as_set(ids_of({users})) == std::set<std::string>{fay_id, kim_id});
    // Contoso's consent is unchanged.
    token("contoso.example", crm_client, crm_secret);
  }
  SECTION("a member is refused") {
    check_denied(admin_consent("fabrikam.example", "kim@fabrikam.example"));
  }
  SECTION("another tenant's admin is refused") {
    check_denied(admin_consent("fabrikam.example", "admin@contoso.example"));
  }
  SECTION("an unknown person is refused") {
    check_denied(admin_consent("fabrikam.example", "nobody@fabrikam.example"));
  }
  SECTION("an unknown app is not redirected") {
    auto r = admin_consent("fabrikam.example", "fay@fabrikam.example",
                           "no-such-app");
    check_oauth_error(r, 400, "unauthorized_client", 700016);
    CHECK(r.header("Location").empty());
  }
}

// == discovery ===============================================================

TEST_CASE_METHOD(identity, "identity: OpenID configuration and signing keys",
                 "[emulator][identity][discovery]") {
  for (std::string tenant :
       {std::string{"contoso.example"}, std::string{contoso_id}}) {
    INFO("tenant " << tenant);
    auto r
        = send("GET", "/" + tenant + "/v2.0/.well-known/openid-configuration");
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(r.str("/issuer") == origin() + "/" + contoso_id + "/v2.0");
    CHECK(r.str("/authorization_endpoint")
          == origin() + "/" + tenant + "/oauth2/v2.0/authorize");
    CHECK(r.str("/token_endpoint")
          == origin() + "/" + tenant + "/oauth2/v2.0/token");
    CHECK(r.str("/jwks_uri")
          == origin() + "/" + tenant + "/discovery/v2.0/keys");
    CHECK(r.json("/response_types_supported") == R"(["code"])");
    CHECK(r.json("/id_token_signing_alg_values_supported") == R"(["RS256"])");
    // The advertised endpoints answer.
    auto k = send("GET", target_of(r.str("/jwks_uri")));
    E2E_REQUIRE_STATUS(k, 200);
    CHECK(k.size("/keys") >= 1);
  }
  for (std::string tenant : {"organizations", "common"}) {
    INFO("tenant " << tenant);
    auto r
        = send("GET", "/" + tenant + "/v2.0/.well-known/openid-configuration");
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(r.str("/issuer") == origin() + "/{tenantid}/v2.0");
    CHECK(r.str("/authorization_endpoint")
          == origin() + "/" + tenant + "/oauth2/v2.0/authorize");
  }

  // One RSA-2048 signing key, the same whichever tenant path is asked.
  auto k = keys("contoso.example");
  REQUIRE(k.size("/keys") == 1);
  CHECK(k.str("/keys/0/kty") == "RSA");
  CHECK(k.str("/keys/0/use") == "sig");
  CHECK(k.str("/keys/0/alg") == "RS256");
  CHECK(k.str("/keys/0/e") == "AQAB");
  CHECK(base64url_decode(k.str("/keys/0/n")).size() == 256);
  CHECK(keys("common").json() == k.json());
  CHECK(keys(fabrikam_id).json() == k.json());
  // Tokens are signed with it.
  auto id = id_token_of("contoso.example", "alex@contoso.example");
  CHECK(id.header().str("/kid") == k.str("/keys/0/kid"));
}

TEST_CASE_METHOD(identity,
                 "identity: after a reset, the old people are gone from "
                 "sign-in and their names are free",
                 "[emulator][identity]") {
  // Sign-in finds tenants by domain and people by UPN through indexes of
  // the directory; a reset must empty them with it.
  E2E_REQUIRE_STATUS(send("POST", "/_emulator/reset"), 204);
  // Fabrikam again, with Kim's UPN now Pat's: Kim and Fay are gone.
  auto f = seed_tenant(R"({"domain":"fabrikam.example","users":[)"
                       R"({"userPrincipalName":"KIM@fabrikam.example",)"
                       R"("displayName":"Pat"}]})");
  seed_app(crm_client, crm_secret, R"(["fabrikam.example"])");
  SECTION("someone seeded before the reset is refused") {
    auto p = redirected(authorize("fabrikam.example", "fay@fabrikam.example"));
    CHECK(p["error"] == "invalid_request");
    CHECK(starts_with(p["error_description"], "AADSTS50034: "));
    // Contoso's domain is unknown now, even for a sign-in by UPN.
    p = redirected(authorize("contoso.example", "alex@contoso.example"));
    CHECK(starts_with(p["error_description"], "AADSTS50034: "));
    p = redirected(authorize("organizations", "alex@contoso.example"));
    CHECK(starts_with(p["error_description"], "AADSTS50034: "));
  }
  SECTION("the UPN seeded again signs in as its new person") {
    auto id = id_token_of("fabrikam.example", "kim@FABRIKAM.example");
    auto c = id.claims();
    CHECK(c.str("/oid") == f.str("/users/0/id"));
    CHECK(c.str("/oid") != kim_id);
    CHECK(c.str("/name") == "Pat");
    CHECK(c.str("/tid") == f.str("/id"));
  }
  SECTION("an old domain and UPN can be seeded again") {
    seed_tenant(R"({"domain":"Contoso.example","users":[)"
                R"({"userPrincipalName":"alex@contoso.example"}]})");
    CHECK(redirected(authorize("contoso.example", "alex@contoso.example"))
              .count("code")
          == 1);
    // ...once: the new seed is in the indexes.
    check_error(send("POST", "/_emulator/tenants",
                     R"({"domain":"other.example","users":[)"
                     R"({"userPrincipalName":"ALEX@contoso.example"}]})"),
                409, "Conflict");
  }
}

TEST_CASE_METHOD(identity,
                 "identity: a person who left cannot sign in, joining again "
                 "signs in as the new person",
                 "[emulator][identity]") {
  // Sign-in finds people through an index by UPN: leaving must take the
  // UPN out of it, joining again must put it back.
  auto earlier_code = sign_in("fabrikam.example", "kim@fabrikam.example");
  E2E_REQUIRE_STATUS(send("DELETE", "/_emulator/users/KIM@fabrikam.example"),
                     204);
  auto p = redirected(authorize("fabrikam.example", "kim@fabrikam.example"));
  CHECK(p["error"] == "invalid_request");
  CHECK(starts_with(p["error_description"], "AADSTS50034: "));
  // A code issued before leaving is no good now.
  check_oauth_error(redeem("fabrikam.example", earlier_code), 400,
                    "invalid_grant", 50034);
  check_error(send("DELETE", "/_emulator/users/" + kim_id), 404,
              "Request_ResourceNotFound");
  // Fay stays.
  CHECK(redirected(authorize("fabrikam.example", "fay@fabrikam.example"))
            .count("code")
        == 1);

  auto joined = send("POST", "/_emulator/tenants/fabrikam.example/users",
                     R"({"users":[{"userPrincipalName":"Kim@fabrikam.example",)"
                     R"("displayName":"Kim again"}]})");
  E2E_REQUIRE_STATUS(joined, 201);
  auto new_id = joined.str("/users/0/id");
  CHECK(new_id != kim_id);
  CHECK(joined.str("/users/0/userPrincipalName") == "Kim@fabrikam.example");
  auto c = id_token_of("fabrikam.example", "kim@fabrikam.example").claims();
  CHECK(c.str("/oid") == new_id);
  CHECK(c.str("/name") == "Kim again");
  CHECK(c.str("/tid") == fabrikam_id);
  // Once: the UPN is taken again, in this tenant or another.
  for (std::string tenant : {fabrikam_id, std::string{"contoso.example"}}) {
    INFO("tenant " << tenant);
    check_error(
        send("POST", "/_emulator/tenants/" + tenant + "/users",
             R"({"users":[{"userPrincipalName":"KIM@fabrikam.example"}]})"),
        409, "Conflict");
  }
  check_error(send("POST", "/_emulator/tenants/nowhere.example/users",
                   R"({"users":[{"userPrincipalName":"x@nowhere.example"}]})"),
              404, "NotFound");
  check_error(send("POST", "/_emulator/tenants/fabrikam.example/users",
                   R"({"users":[{"displayName":"no UPN"}]})"),
              400, "BadRequest");
}
