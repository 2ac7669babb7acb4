// Small text helpers for crmsyncctl: URL building, human-readable numbers and
// durations, and the RFC 3339 check for --from/--to. All functions are pure
// so the unit tests can pin their output down exactly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace crmsync::ctl {

/// Percent-encodes everything except RFC 3986 unreserved characters
/// (A-Z a-z 0-9 - . _ ~), so the result is safe as one path segment or as a
/// query value: "a@b.c" becomes "a%40b.c", "/" becomes "%2F".
std::string url_encode(std::string_view s);

/// Appends "?k=v&k2=v2" to `path`, URL-encoding the values and skipping
/// pairs whose value is empty. Keys are used as given.
std::string
with_query(std::string path,
           const std::vector<std::pair<std::string, std::string>>& params);

/// 512 -> "512 B", 1536 -> "1.5 KiB", 3 << 20 -> "3.0 MiB" (binary units).
std::string format_bytes(std::uint64_t bytes);

/// Seconds as "45s", "5m 03s", "2h 05m 03s", "3d 02h 05m".
std::string format_duration_s(std::uint64_t seconds);

/// Milliseconds as "250ms", "1.2s", and from one minute on like
/// format_duration_s.
std::string format_millis(std::uint64_t ms);

/// True for "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" with plausible
/// field ranges; 't' and 'z' may be lower case as RFC 3339 allows.
bool is_rfc3339(std::string_view s);

/// UTC milliseconds since the epoch of an RFC 3339 time (as is_rfc3339
/// accepts it; fractions beyond milliseconds are cut). False otherwise.
bool parse_rfc3339_ms(std::string_view s, std::int64_t& ms);

/// Splits a console line into words the way a shell does for simple
/// cases: blanks separate words, '...' and "..." quote (no escapes inside
/// single quotes), a backslash escapes the next character. Returns false
/// with a reason in `err` for an unterminated quote or a trailing
/// backslash.
bool split_words(std::string_view line, std::vector<std::string>& words,
                 std::string& err);

} // namespace crmsync::ctl
