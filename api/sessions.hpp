// Cookie sessions for the browser pages (issue 14): after an Office 365
// sign-in in a browser, the person holds a random cookie (HttpOnly,
// SameSite=Lax, Secure on an https public URL); the node keeps what it
// stands for in the sessions table under the cookie's SHA-256, with an
// expiry. A CRM user's session is a row of their organization, written by
// its tenant actor on the shard's primary and replicated with the shard
// (t15-sessions); anyone else's stays on the node that signed them in. Every
// form of the pages carries the session's CSRF token, so a page of another site
// cannot make the browser act (the cookie alone is not enough). Programs never
// see any of this: they use tokens.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "http/server.hpp"
#include "http/url.hpp"
#include "protocol/ids.hpp"
#include "protocol/office365.hpp"

namespace crmsync::http {

namespace pages {

/// The value of cookie `name` in a Cookie header ("" when absent).
std::string cookie_value(std::string_view header, std::string_view name);

/// The path part of a public URL ("" at the root): where cookies apply.
std::string public_path(const std::string& public_url);

/// Whether `v` is `size` base64url characters (a value this node mints
/// with crypto::random_token).
bool well_formed_secret(std::string_view v, size_t size);

/// What a page session stands for: the verified Office 365 person, and,
/// when the sign-in found their CRM account, that user with the hash of the
/// API token minted for the session (never shown; it is how the pages act
/// as the user towards the tenant actor).
struct session {
  o365_identity who;
  tenant_id org;
  user_id user;
  std::string token_hash;
  std::string csrf; ///< the forms' token, bound to this session
  int64_t expires_ms = 0;

  bool member() const {
    return user.valid() && !token_hash.empty();
  }
};

/// The session cookie's name.
constexpr std::string_view session_cookie = "crmsync_session";

/// A session's stored form (storage::keys::page_session_value): the
/// expiry (what the purge reads), the organization and user (what
/// replication finds its shard by), then JSON. decode also reads the older
/// form (expiry, then JSON).
std::string encode(const session& s);
bool decode(std::string_view v, session& out);

/// Set-Cookie for cookie `name` of the pages (`max_age` seconds; 0
/// removes it): HttpOnly, SameSite=Lax, on the public URL's path, and
/// Secure when the public URL is https.
std::string set_cookie(std::string_view name, const std::string& public_url,
                       const std::string& value, int64_t max_age);

/// The session cookie's name behind `public_url`: `__Host-crmsync_session`
/// on https at the root path (Secure, Path=/, no Domain: no other site or
/// path can set it), `crmsync_session` otherwise.
std::string session_cookie_name(const std::string& public_url);

/// The session cookie a request carries, if well formed ("" otherwise).
std::string session_cookie_of(const request& req,
                              const std::string& public_url);

/// Whether the request carries the session cookie more than once (one of
/// them planted by someone else): such a request is refused.
bool duplicate_session_cookie(const request& req,
                              const std::string& public_url);

/// Whether `form` carries the session's CSRF token.
bool csrf_ok(const session& s, const query_params& form);

} // namespace pages
} // namespace crmsync::http
