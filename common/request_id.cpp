#include "common/request_id.hpp"

#include "common/crypto.hpp"

namespace crmsync {

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > max_request_id_size)
    return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9');
    if (!ok) {
      switch (c) {
        case '-':
        case '_':
        case '.':
        case ':':
        case '=':
        case '+':
        case '/':
        case '@':
          ok = true;
          break;
        default:
          break;
      }
    }
    if (!ok)
      return false;
  }
  return true;
}

std::string request_id_or_new(std::string_view header) {
  return valid_request_id(header) ? std::string{header} : crypto::random_guid();
}

std::string choose_request_id(std::string_view header,
                              const std::string& remote,
                              const address_set& trusted) {
  return trusted.contains(host_of(remote)) ? request_id_or_new(header)
                                           : crypto::random_guid();
}

} // namespace crmsync
