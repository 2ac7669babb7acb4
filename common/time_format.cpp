#include "common/time_format.hpp"

#include <cstdio>

namespace crmsync {

namespace {

constexpr int64_t ms_per_day = 86'400'000;

// Reads exactly n decimal digits.
bool digits(std::string_view s, size_t pos, size_t n, int64_t& out) {
  if (pos + n > s.size())
    return false;
  int64_t v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

bool leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned table[]
      = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : table[m - 1];
}

struct civil {
  int64_t y;
  unsigned m;
  unsigned d;
};

// Inverse of days_from_civil (era-based, valid for the whole int64 range
// that milliseconds can express).
civil civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {m <= 2 ? y + 1 : y, m, d};
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    --q;
  return q;
}

bool parse_ymd(std::string_view s, int64_t& y, int64_t& mo, int64_t& d) {
  if (s.size() < 10 || s[4] != '-' || s[7] != '-')
    return false;
  if (!digits(s, 0, 4, y) || !digits(s, 5, 2, mo) || !digits(s, 8, 2, d))
    return false;
  if (mo < 1 || mo > 12 || d < 1)
    return false;
  return d <= days_in_month(y, static_cast<unsigned>(mo));
}

} // namespace

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::optional<int64_t> parse_rfc3339_ms(std::string_view s) {
  int64_t y, mo, d, h, mi, sec;
  if (!parse_ymd(s, y, mo, d))
    return std::nullopt;
  if (s.size() < 20 || (s[10] != 'T' && s[10] != 't') || s[13] != ':'
      || s[16] != ':')
    return std::nullopt;
  if (!digits(s, 11, 2, h) || !digits(s, 14, 2, mi) || !digits(s, 17, 2, sec))
    return std::nullopt;
  // Leap seconds are not representable in Unix time; refuse rather than
  // silently roll over into the next minute.
  if (h > 23 || mi > 59 || sec > 59)
    return std::nullopt;
  size_t pos = 19;
  int64_t frac_ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (pos - start < 3)
        frac_ms = frac_ms * 10 + (s[pos] - '0');
      ++pos;
    }
    size_t n = pos - start;
    if (n == 0 || n > 9)
      return std::nullopt;
    for (size_t i = n; i < 3; ++i)
      frac_ms *= 10;
  }
  int64_t offset_min = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int64_t oh, om;
    if (pos + 6 != s.size() || s[pos + 3] != ':' || !digits(s, pos + 1, 2, oh)
        || !digits(s, pos + 4, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset_min = oh * 60 + om;
    if (s[pos] == '-')
      offset_min = -offset_min;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size())
    return std::nullopt;
  int64_t days
      = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
  return secs * 1000 + frac_ms;
}

std::optional<int64_t> parse_date_ms(std::string_view s) {
  int64_t y, mo, d;
  if (s.size() != 10 || !parse_ymd(s, y, mo, d))
    return std::nullopt;
  return days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d))
         * ms_per_day;
}

namespace {

std::string format_impl(int64_t ms, bool always_ms) {
  int64_t days = floor_div(ms, ms_per_day);
  int64_t rem = ms - days * ms_per_day;
  civil c = civil_from_days(days);
  int64_t h = rem / 3'600'000;
  int64_t mi = rem / 60'000 % 60;
  int64_t s = rem / 1000 % 60;
  int64_t milli = rem % 1000;
  char buf[64];
  if (always_ms || milli != 0)
    std::snprintf(buf, sizeof(buf),
                  "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ",
                  static_cast<long long>(c.y), c.m, c.d,
                  static_cast<long long>(h), static_cast<long long>(mi),
                  static_cast<long long>(s), static_cast<long long>(milli));
  else
    std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ",
                  static_cast<long long>(c.y), c.m, c.d,
                  static_cast<long long>(h), static_cast<long long>(mi),
                  static_cast<long long>(s));
  return buf;
}

} // namespace

std::string format_rfc3339(int64_t ms) {
  return format_impl(ms, false);
}

std::string format_rfc3339_ms(int64_t ms) {
  return format_impl(ms, true);
}

std::string format_date(int64_t ms) {
  civil c = civil_from_days(floor_div(ms, ms_per_day));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02u",
                static_cast<long long>(c.y), c.m, c.d);
  return buf;
}

std::string format_http_date(int64_t ms) {
  static const char* const weekdays[]
      = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"}; // 1970-01-01: Thu
  static const char* const months[]
      = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  int64_t days = floor_div(ms, ms_per_day);
  civil c = civil_from_days(days);
  int64_t in_day = (ms - days * ms_per_day) / 1000;
  auto weekday = static_cast<size_t>(((days % 7) + 7) % 7);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%s, %02u %s %04lld %02lld:%02lld:%02lld GMT",
                weekdays[weekday], c.d, months[c.m - 1],
                static_cast<long long>(c.y),
                static_cast<long long>(in_day / 3600),
                static_cast<long long>(in_day / 60 % 60),
                static_cast<long long>(in_day % 60));
  return buf;
}

} // namespace crmsync
