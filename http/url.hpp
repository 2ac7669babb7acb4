// URL pieces: percent-decoding and query strings. Pure functions.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace crmsync::http {

using query_params = std::vector<std::pair<std::string, std::string>>;

/// Percent-decodes a URL component; false on a bad escape or a NUL byte.
bool percent_decode(std::string_view in, std::string& out, bool plus_space);

/// Percent-encodes everything but RFC 3986 unreserved characters and '$'
/// (kept readable in OData parameter names).
std::string percent_encode(std::string_view in);

/// Splits "a=1&b=2" into decoded pairs; false on a bad escape.
bool parse_query(std::string_view query, query_params& out);

/// The value of the first parameter with this name, or nullptr.
const std::string* find_param(const query_params& ps, std::string_view name);

} // namespace crmsync::http
