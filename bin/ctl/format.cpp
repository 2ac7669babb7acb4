#include "ctl/format.hpp"

#include <cstdio>
#include <iterator>

namespace crmsync::ctl {

namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
         || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
         || c == '~';
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads `n` digits at `pos` into `value`; false if any is not a digit.
bool read_digits(std::string_view s, std::size_t pos, std::size_t n,
                 int& value) {
  if (pos + n > s.size())
    return false;
  value = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (!is_digit(s[i]))
      return false;
    value = value * 10 + (s[i] - '0');
  }
  return true;
}

std::string two_digits(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%02llu", static_cast<unsigned long long>(v));
  return buf;
}

} // namespace

std::string url_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c)) {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0x0F];
    }
  }
  return out;
}

std::string
with_query(std::string path,
           const std::vector<std::pair<std::string, std::string>>& params) {
  char sep = '?';
  for (const auto& [key, value] : params) {
    if (value.empty())
      continue;
    path += sep;
    path += key;
    path += '=';
    path += url_encode(value);
    sep = '&';
  }
  return path;
}

std::string format_bytes(std::uint64_t bytes) {
  static constexpr const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024)
    return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  // Switch units before rounding would print "1024.0".
  while (v >= 1023.95 && unit + 1 < std::size(units)) {
    v /= 1024.0;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[unit]);
  return buf;
}

std::string format_duration_s(std::uint64_t seconds) {
  std::uint64_t d = seconds / 86400;
  std::uint64_t h = seconds / 3600 % 24;
  std::uint64_t m = seconds / 60 % 60;
  std::uint64_t s = seconds % 60;
  if (d > 0)
    return std::to_string(d) + "d " + two_digits(h) + "h " + two_digits(m)
           + "m";
  if (h > 0)
    return std::to_string(h) + "h " + two_digits(m) + "m " + two_digits(s)
           + "s";
  if (m > 0)
    return std::to_string(m) + "m " + two_digits(s) + "s";
  return std::to_string(s) + "s";
}

std::string format_millis(std::uint64_t ms) {
  if (ms < 1000)
    return std::to_string(ms) + "ms";
  if (ms < 60000) {
    // Tenths, rounded down, so 59999 stays "59.9s" and never "60.0s".
    std::uint64_t tenths = ms / 100;
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10)
           + "s";
  }
  return format_duration_s(ms / 1000);
}

bool is_rfc3339(std::string_view s) {
  // 2026-11-26T13:00:00Z is the shortest form: 20 characters.
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (s.size() < 20 || !read_digits(s, 0, 4, year) || s[4] != '-'
      || !read_digits(s, 5, 2, month) || s[7] != '-'
      || !read_digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't')
      || !read_digits(s, 11, 2, hour) || s[13] != ':'
      || !read_digits(s, 14, 2, minute) || s[16] != ':'
      || !read_digits(s, 17, 2, second))
    return false;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59
      || second > 60) // 60: leap second
    return false;

  std::size_t pos = 19;
  if (s[pos] == '.') {
    std::size_t start = ++pos;
    while (pos < s.size() && is_digit(s[pos]))
      ++pos;
    if (pos == start)
      return false;
  }
  if (pos >= s.size())
    return false;
  if (s[pos] == 'Z' || s[pos] == 'z')
    return pos + 1 == s.size();
  if (s[pos] != '+' && s[pos] != '-')
    return false;
  int off_h = 0, off_m = 0;
  return pos + 6 == s.size() && read_digits(s, pos + 1, 2, off_h)
         && s[pos + 3] == ':' && read_digits(s, pos + 4, 2, off_m)
         && off_h <= 23 && off_m <= 59;
}

bool parse_rfc3339_ms(std::string_view s, std::int64_t& ms) {
  if (!is_rfc3339(s))
    return false;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  read_digits(s, 0, 4, year);
  read_digits(s, 5, 2, month);
  read_digits(s, 8, 2, day);
  read_digits(s, 11, 2, hour);
  read_digits(s, 14, 2, minute);
  read_digits(s, 17, 2, second);
  // Days from the civil date (proleptic Gregorian), 1970-01-01 = 0.
  int y = year - (month <= 2 ? 1 : 0);
  std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  std::int64_t yoe = y - era * 400;
  std::int64_t mp = (month + 9) % 12;
  std::int64_t doy = (153 * mp + 2) / 5 + day - 1;
  std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  std::int64_t days = era * 146097 + doe - 719468;
  std::int64_t out = ((days * 24 + hour) * 60 + minute) * 60 + second;
  out *= 1000;
  std::size_t pos = 19;
  if (s[pos] == '.') {
    std::int64_t scale = 100;
    for (++pos; is_digit(s[pos]); ++pos) {
      out += (s[pos] - '0') * scale;
      scale /= 10;
    }
  }
  if (s[pos] == '+' || s[pos] == '-') {
    int off_h = 0, off_m = 0;
    read_digits(s, pos + 1, 2, off_h);
    read_digits(s, pos + 4, 2, off_m);
    std::int64_t off = (off_h * 60 + off_m) * 60000;
    out += s[pos] == '+' ? -off : off;
  }
  ms = out;
  return true;
}

bool split_words(std::string_view line, std::vector<std::string>& words,
                 std::string& err) {
  words.clear();
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote == '\'') {
      if (c == '\'')
        quote = 0;
      else
        word += c;
      continue;
    }
    if (c == '\\') {
      if (i + 1 == line.size()) {
        err = "the line ends in a backslash";
        return false;
      }
      word += line[++i];
      in_word = true;
      continue;
    }
    if (quote == '"') {
      if (c == '"')
        quote = 0;
      else
        word += c;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word)
        words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    word += c;
    in_word = true;
  }
  if (quote != 0) {
    err = std::string("unterminated ") + (quote == '"' ? "\"" : "'") + " quote";
    return false;
  }
  if (in_word)
    words.push_back(std::move(word));
  return true;
}

} // namespace crmsync::ctl
