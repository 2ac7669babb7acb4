// RFC 3339 timestamps and calendar dates <-> milliseconds since the epoch.
//
// The API speaks RFC 3339 in UTC ("2026-11-26T14:00:00Z") and plain dates
// for all-day events ("2026-11-26"); storage keeps int64 milliseconds.
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace crmsync {

/// Parses "YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)" into UTC milliseconds.
/// Lower-case 't'/'z' are accepted; an offset is applied. Returns nullopt for
/// anything else, including out-of-range fields (month 13, second 61, …).
std::optional<int64_t> parse_rfc3339_ms(std::string_view text);

/// Parses "YYYY-MM-DD" into the UTC midnight of that day, in milliseconds.
std::optional<int64_t> parse_date_ms(std::string_view text);

/// "YYYY-MM-DDTHH:MM:SSZ", with ".mmm" before the Z only when ms != 0.
std::string format_rfc3339(int64_t ms);

/// Always "YYYY-MM-DDTHH:MM:SS.mmmZ" (log lines).
std::string format_rfc3339_ms(int64_t ms);

/// "YYYY-MM-DD" of the UTC day containing ms.
std::string format_date(int64_t ms);

/// An HTTP date (RFC 9110 IMF-fixdate), "Sun, 06 Nov 1994 08:49:37 GMT".
std::string format_http_date(int64_t ms);

/// Days since 1970-01-01 for a proleptic Gregorian date.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);

} // namespace crmsync
