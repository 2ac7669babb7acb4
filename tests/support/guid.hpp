// Test support: what a GUID from crmsync looks like (crypto::random_guid:
// lower-case, version 4), for tests of request ids and Graph's ids.
#pragma once

#include <string>

namespace crmsync::test {

inline bool is_guid(const std::string& s) {
  if (s.size() != 36 || s[14] != '4')
    return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  }
  return true;
}

} // namespace crmsync::test
