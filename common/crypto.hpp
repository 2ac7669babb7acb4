// Secrets: random tokens, SHA-256 digests, password hashing (Argon2id).
//
// Backed by libsodium, whose crypto_pwhash is a real memory-hard KDF with a
// per-hash random salt. Call crypto_init() once at process start before any
// other function here; all functions are thread-safe after that.
#pragma once

#include <string>
#include <string_view>

namespace crmsync::crypto {

/// Initialises libsodium; returns false if the library cannot start.
bool init();

/// n random bytes from the OS CSPRNG, encoded as unpadded base64url.
std::string random_token(size_t n_bytes);

/// Unpadded base64url of arbitrary bytes (JWT segments, JWKS values).
std::string base64url(std::string_view bytes);

/// A random 64-bit value from the OS CSPRNG.
uint64_t random_u64();

/// A random (version 4) GUID, lower-case "xxxxxxxx-xxxx-4xxx-yxxx-…":
/// HTTP request ids and Graph's client-request-id.
std::string random_guid();

/// Lower-case hex SHA-256 of the input.
std::string sha256_hex(std::string_view data);

/// Argon2id hash in libsodium's self-describing string format (salt and
/// cost parameters included). Slow on purpose (~tens of ms, 64 MiB).
std::string hash_password(std::string_view password);

/// Checks a password against a stored hash_password() result.
bool verify_password(std::string_view password, const std::string& stored);

/// Constant-time equality for secrets of possibly different lengths.
bool equal_secret(std::string_view a, std::string_view b);

} // namespace crmsync::crypto
