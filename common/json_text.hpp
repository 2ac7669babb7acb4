// JSON string literals, for every layer that writes JSON by hand: the
// API's writer (protocol/json.hpp) and the logger's JSON lines
// (common/log.hpp). Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace crmsync {

/// Appends `s` as a JSON string literal: quoted, '"' and '\' escaped,
/// control characters as \n, \r, \t or \u00XX, valid UTF-8 passed through
/// and every invalid byte replaced by U+FFFD, so the output is always
/// valid JSON on one line.
void append_json_string(std::string& out, std::string_view s);

} // namespace crmsync
