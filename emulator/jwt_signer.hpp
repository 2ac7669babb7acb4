// RS256 signing of the emulator's id_tokens and the matching JWKS.
//
// One RSA-2048 key per process, generated at start (as a real identity
// platform rotates keys, clients must fetch them from the JWKS endpoint).
// OpenSSL stays inside jwt_signer.cpp. Thread-safe after construction.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace crmsync::emulator {

class jwt_signer {
public:
  /// Generates the key; throws std::runtime_error if OpenSSL cannot.
  jwt_signer();
  ~jwt_signer();
  jwt_signer(const jwt_signer&) = delete;
  jwt_signer& operator=(const jwt_signer&) = delete;

  /// header.payload.signature for this JSON payload (compact JWS).
  std::string sign(std::string_view payload_json) const;

  /// {"keys":[{"kty":"RSA","use":"sig","kid",…,"n","e"}]}
  std::string jwks() const;

  const std::string& key_id() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace crmsync::emulator
