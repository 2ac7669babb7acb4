// A route table: method + path pattern ("/api/v1/orgs/{org}") -> handler.
//
// Matching is by whole path segments; "{name}" captures one segment. A path
// that matches some pattern but not the method answers 405 with Allow.
// "/x/" is "/x" (one trailing slash), as the proxies' prefix matches in
// deploy/ see it; a path with an empty segment ("//x", "/x//y") matches no
// route, so no spelling of a path reaches a route that a proxy in front
// would not count as that route.
// Built once at start-up, then read-only: safe to use from any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/server.hpp"

namespace crmsync::http {

using path_params = std::vector<std::string>;
using route_handler
    = std::function<void(request&, const path_params&, responder_ptr)>;

class router {
public:
  void add(std::string method, std::string pattern, route_handler h);

  enum class outcome { matched, no_route, wrong_method };

  /// Finds the handler; on wrong_method, `allow` lists the methods that
  /// the path accepts.
  outcome match(const request& req, const route_handler*& h,
                path_params& params, std::string& allow) const;
  /// The same, and on matched `pattern` points at the route's pattern as
  /// added (e.g. "/api/v1/orgs/{org}"), for metrics by route.
  outcome match(const request& req, const route_handler*& h,
                path_params& params, std::string& allow,
                const std::string*& pattern) const;

  /// One entry of the table: what add() was given, without its handler.
  struct entry {
    std::string method;
    std::string pattern;
  };
  /// Every route in the order added: what the API describes
  /// (api/openapi/openapi.json) and its test compares.
  std::vector<entry> table() const;

private:
  struct route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    route_handler h;
  };
  std::vector<route> routes_;
};

/// Splits "/a/b/c" into {"a","b","c"}; a trailing slash is ignored, and
/// so are empty segments (lenient: the emulator's resource paths).
std::vector<std::string_view> split_path(std::string_view path);

/// Splits a request path for routing: "/a/b" and "/a/b/" into {"a","b"},
/// "/" and "" into {}. False for a path with an empty segment ("//a",
/// "/a//b", "/a//") or one not starting with '/'.
bool split_route_path(std::string_view path,
                      std::vector<std::string_view>& out);

} // namespace crmsync::http
