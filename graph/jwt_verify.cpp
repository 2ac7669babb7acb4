#include "graph/jwt_verify.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <simdjson.h>

#include <memory>

namespace crmsync::graph::jwt {

namespace {

/// The Global Administrator role template id, as carried in `wids`.
constexpr std::string_view global_admin_role
    = "62e90394-69f5-4237-9190-012177145e10";

constexpr int min_rsa_bits = 2048;

int b64url_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

simdjson::dom::parser& json_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

/// Reads a NumericDate claim (integer or fractional seconds).
bool numeric_date(simdjson::dom::element root, const char* name, int64_t& out) {
  simdjson::dom::element e;
  if (root[name].get(e))
    return false;
  int64_t i = 0;
  if (!e.get_int64().get(i)) {
    out = i;
    return true;
  }
  double d = 0;
  if (!e.get_double().get(d)) {
    out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

std::string string_claim(simdjson::dom::element root, const char* name) {
  std::string_view sv;
  if (root[name].get_string().get(sv))
    return {};
  return std::string{sv};
}

struct pkey_free {
  void operator()(EVP_PKEY* p) const {
    EVP_PKEY_free(p);
  }
};
struct bn_free {
  void operator()(BIGNUM* p) const {
    BN_free(p);
  }
};
struct bld_free {
  void operator()(OSSL_PARAM_BLD* p) const {
    OSSL_PARAM_BLD_free(p);
  }
};
struct params_free {
  void operator()(OSSL_PARAM* p) const {
    OSSL_PARAM_free(p);
  }
};
struct pctx_free {
  void operator()(EVP_PKEY_CTX* p) const {
    EVP_PKEY_CTX_free(p);
  }
};
struct mdctx_free {
  void operator()(EVP_MD_CTX* p) const {
    EVP_MD_CTX_free(p);
  }
};

BIGNUM* to_bignum(const std::string& bytes) {
  return BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                   static_cast<int>(bytes.size()), nullptr);
}

/// An OpenSSL RSA public key from the JWK's modulus and exponent.
std::unique_ptr<EVP_PKEY, pkey_free> rsa_public_key(const rsa_jwk& key,
                                                    std::string& err) {
  std::unique_ptr<BIGNUM, bn_free> n{to_bignum(key.n)};
  std::unique_ptr<BIGNUM, bn_free> e{to_bignum(key.e)};
  if (!n || !e) {
    err = "cannot read the key's modulus or exponent";
    return nullptr;
  }
  if (BN_num_bits(n.get()) < min_rsa_bits) {
    err = "the signing key is shorter than 2048 bits";
    return nullptr;
  }
  std::unique_ptr<OSSL_PARAM_BLD, bld_free> bld{OSSL_PARAM_BLD_new()};
  if (!bld
      || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1
      || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get())
             != 1) {
    err = "cannot build the RSA key parameters";
    return nullptr;
  }
  std::unique_ptr<OSSL_PARAM, params_free> params{
      OSSL_PARAM_BLD_to_param(bld.get())};
  std::unique_ptr<EVP_PKEY_CTX, pctx_free> ctx{
      EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr)};
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1
      || EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get())
             != 1) {
    err = "OpenSSL refused the RSA public key";
    return nullptr;
  }
  return std::unique_ptr<EVP_PKEY, pkey_free>{raw};
}

} // namespace

bool base64url_decode(std::string_view in, std::string& out) {
  while (!in.empty() && in.back() == '=')
    in.remove_suffix(1);
  if (in.size() % 4 == 1)
    return false;
  out.clear();
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = b64url_value(c);
    if (v < 0)
      return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero padding of the last character.
  return (acc & ((1u << bits) - 1)) == 0;
}

bool decode(std::string_view token, decoded& out, std::string& err) {
  auto first = token.find('.');
  auto second
      = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos
      || token.find('.', second + 1) != std::string_view::npos) {
    err = "the id_token is not a compact JWS (header.payload.signature)";
    return false;
  }
  std::string header;
  if (!base64url_decode(token.substr(0, first), header)
      || !base64url_decode(token.substr(first + 1, second - first - 1),
                           out.payload_json)
      || !base64url_decode(token.substr(second + 1), out.signature)) {
    err = "the id_token has a part that is not base64url";
    return false;
  }
  simdjson::dom::element h;
  if (json_parser().parse(header).get(h) || !h.is_object()) {
    err = "the id_token's header is not a JSON object";
    return false;
  }
  out.alg = string_claim(h, "alg");
  out.kid = string_claim(h, "kid");
  if (out.alg != "RS256") {
    err = "the id_token is signed with '" + out.alg + "', not RS256";
    return false;
  }
  if (out.kid.empty()) {
    err = "the id_token's header names no key (kid)";
    return false;
  }
  out.signing_input = std::string{token.substr(0, second)};
  return true;
}

bool tenant_of(const decoded& token, std::string& tid, std::string& err) {
  simdjson::dom::element root;
  if (json_parser().parse(token.payload_json).get(root) || !root.is_object()) {
    err = "the id_token's claims are not a JSON object";
    return false;
  }
  tid = string_claim(root, "tid");
  if (tid.empty()) {
    err = "the id_token has no tid claim";
    return false;
  }
  return true;
}

bool parse_jwks(std::string_view json, std::map<std::string, rsa_jwk>& out,
                std::string& err) {
  simdjson::dom::element root;
  simdjson::dom::array keys;
  if (json_parser().parse(json.data(), json.size()).get(root)
      || root["keys"].get_array().get(keys)) {
    err = "the key set is not {\"keys\":[…]}";
    return false;
  }
  out.clear();
  for (simdjson::dom::element k : keys) {
    if (string_claim(k, "kty") != "RSA")
      continue;
    auto use = string_claim(k, "use");
    if (!use.empty() && use != "sig")
      continue;
    auto kid = string_claim(k, "kid");
    rsa_jwk key;
    if (kid.empty() || !base64url_decode(string_claim(k, "n"), key.n)
        || !base64url_decode(string_claim(k, "e"), key.e) || key.n.empty()
        || key.e.empty())
      continue;
    out[kid] = std::move(key);
  }
  return true;
}

bool verify_rs256(const decoded& token, const rsa_jwk& key, std::string& err) {
  auto pkey = rsa_public_key(key, err);
  if (!pkey)
    return false;
  std::unique_ptr<EVP_MD_CTX, mdctx_free> ctx{EVP_MD_CTX_new()};
  if (!ctx
      || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                              pkey.get())
             != 1) {
    err = "cannot start RS256 verification";
    return false;
  }
  int rc = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(token.signature.data()),
      token.signature.size(),
      reinterpret_cast<const unsigned char*>(token.signing_input.data()),
      token.signing_input.size());
  if (rc != 1) {
    err = "the id_token's signature does not verify";
    return false;
  }
  return true;
}

bool check_claims(const decoded& token, const expectations& want, identity& out,
                  std::string& err) {
  simdjson::dom::element root;
  if (json_parser().parse(token.payload_json).get(root) || !root.is_object()) {
    err = "the id_token's claims are not a JSON object";
    return false;
  }
  auto iss = string_claim(root, "iss");
  if (iss != want.issuer) {
    err = "the id_token's issuer '" + iss + "' is not '" + want.issuer + "'";
    return false;
  }
  bool audience_ok = string_claim(root, "aud") == want.audience;
  simdjson::dom::array auds;
  if (!audience_ok && !root["aud"].get_array().get(auds))
    for (simdjson::dom::element a : auds) {
      std::string_view sv;
      audience_ok
          = audience_ok || (!a.get_string().get(sv) && sv == want.audience);
    }
  if (!audience_ok) {
    err = "the id_token was issued for another application (aud)";
    return false;
  }
  int64_t exp = 0;
  if (!numeric_date(root, "exp", exp)) {
    err = "the id_token has no exp claim";
    return false;
  }
  if (exp + want.skew_s <= want.now_s) {
    err = "the id_token has expired";
    return false;
  }
  int64_t nbf = 0;
  if (numeric_date(root, "nbf", nbf) && nbf - want.skew_s > want.now_s) {
    err = "the id_token is not valid yet (nbf)";
    return false;
  }
  auto nonce = string_claim(root, "nonce");
  if (want.nonce.empty() || nonce != want.nonce) {
    err = "the id_token's nonce does not match the sign-in request";
    return false;
  }
  identity id;
  id.tenant_id = string_claim(root, "tid");
  id.object_id = string_claim(root, "oid");
  if (id.tenant_id.empty() || id.object_id.empty()) {
    err = "the id_token lacks tid or oid";
    return false;
  }
  id.preferred_username = string_claim(root, "preferred_username");
  id.email = string_claim(root, "email");
  id.name = string_claim(root, "name");
  simdjson::dom::array wids;
  if (!root["wids"].get_array().get(wids))
    for (simdjson::dom::element w : wids) {
      std::string_view sv;
      if (!w.get_string().get(sv) && sv == global_admin_role)
        id.is_global_admin = true;
    }
  out = std::move(id);
  return true;
}

} // namespace crmsync::graph::jwt
