// Graph's wire details used by the client: absolute URLs and which hosts
// may be reached over plain HTTP, Graph and OAuth error bodies,
// Retry-After, JSON string literals, and the mailbox a Graph path touches.
//
// Private to graph/ (and its tests). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crmsync::graph::wire {

/// Scheme, host and port of a URL: what a keep-alive connection serves.
struct origin {
  bool https = false;
  std::string host; ///< lower-case; IPv6 literals without brackets
  uint16_t port = 0;

  /// "https://host:port", the connection pool's key.
  std::string key() const;
  bool operator==(const origin& o) const;
};

/// An absolute http(s) URL split into its origin and its request target.
struct url {
  origin where;
  std::string target; ///< path and query as written, "/" when empty
};

/// Splits "http[s]://host[:port][/path][?query]"; false with `err` for
/// anything else (other schemes, user info, fragments, bad ports).
bool parse_url(std::string_view text, url& out, std::string& err);

/// 127.0.0.0/8, ::1 and "localhost".
bool is_loopback(std::string_view host);

/// True when the URL may be used: https anywhere, plain http only to a
/// loopback host; otherwise false with a sentence in `err`.
bool transport_allowed(const url& u, std::string& err);

/// True for an absolute http:// or https:// URL (case-insensitive).
bool is_absolute(std::string_view s);

/// Graph's `{"error":{"code","message"}}` or OAuth's
/// `{"error","error_description"}`; false when the body is neither.
bool parse_error_body(std::string_view body, std::string& code,
                      std::string& message);

/// Retry-After as delay-seconds; nullopt when absent or not a number
/// (HTTP dates are not used by Graph).
std::optional<int64_t> parse_retry_after(std::string_view value);

/// One item of a $batch answer.
struct batch_item {
  std::string id;
  int64_t status = 0;
  std::string body; ///< minified JSON of the item's body, or ""
  /// From the item's headers (a string or a number); nullopt when absent
  /// or not a number.
  std::optional<int64_t> retry_after;
};

/// Graph's `{"responses":[…]}`: the items that have a string id and an
/// integer status, in the answer's order (others are skipped); false when
/// the body is not JSON or has no responses array.
bool parse_batch_answer(std::string_view body, std::vector<batch_item>& out);

/// The user whose mailbox a Graph request target touches:
/// "{base_path}/users/{id}/…" gives the percent-decoded {id}; the user
/// object itself ("/users/{id}") and everything else give "".
std::string mailbox_of(std::string_view target, std::string_view base_path);

} // namespace crmsync::graph::wire
