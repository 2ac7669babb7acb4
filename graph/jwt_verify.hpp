// Verification of the identity platform's id_tokens: compact JWS decoding,
// the tenant's JWKS, the RS256 signature (OpenSSL 3), and the claims
// (issuer, audience, exp/nbf with clock skew, nonce).
//
// Private to graph/ (client.cpp's redeem_code and the tests). OpenSSL stays
// in jwt_verify.cpp. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "graph/client.hpp"

namespace crmsync::graph::jwt {

/// Unpadded (or padded) base64url to bytes; false on any other character.
bool base64url_decode(std::string_view in, std::string& out);

/// A compact JWS split and decoded; nothing in it is trusted yet.
struct decoded {
  std::string alg;
  std::string kid;
  std::string payload_json;
  std::string signing_input; ///< "header.payload" exactly as received
  std::string signature;     ///< raw bytes
};

/// Splits header.payload.signature, decodes the parts, and reads alg and
/// kid; false with `err` when the token is malformed.
bool decode(std::string_view token, decoded& out, std::string& err);

/// The (unverified) `tid` claim: which tenant's keys to fetch.
bool tenant_of(const decoded& token, std::string& tid, std::string& err);

/// An RSA public key from a JWKS, modulus and exponent as big-endian bytes.
struct rsa_jwk {
  std::string n;
  std::string e;
};

/// `{"keys":[{"kty":"RSA","kid","n","e",…},…]}`: the RSA keys by kid
/// (other key types are skipped).
bool parse_jwks(std::string_view json, std::map<std::string, rsa_jwk>& out,
                std::string& err);

/// Checks the RS256 signature of `token` with `key` (RSA >= 2048 bits).
bool verify_rs256(const decoded& token, const rsa_jwk& key, std::string& err);

struct expectations {
  std::string issuer;   ///< {login}/{tid}/v2.0
  std::string audience; ///< the app's client id
  std::string nonce;    ///< the sign-in request's nonce
  int64_t now_s = 0;    ///< UTC seconds
  int64_t skew_s = 300; ///< tolerated clock difference
};

/// Checks iss, aud, exp, nbf and nonce of a token whose signature was
/// verified, and fills `out` from its claims.
bool check_claims(const decoded& token, const expectations& want, identity& out,
                  std::string& err);

} // namespace crmsync::graph::jwt
