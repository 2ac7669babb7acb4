// Small text helpers shared by the HTTP layers and the emulator.
#pragma once

#include <string>
#include <string_view>

namespace crmsync {

/// ASCII lower-casing (header names, e-mail domains, OData names).
inline std::string ascii_lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return out;
}

/// `s` without leading and trailing blanks (spaces and tabs).
inline std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

/// `in` for HTML text or a quoted attribute: & < > " ' escaped.
inline std::string html_escape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in)
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  return out;
}

} // namespace crmsync
