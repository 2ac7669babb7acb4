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

} // namespace crmsync
