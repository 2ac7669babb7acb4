#include "protocol/messages.hpp"

#include <cstddef>
#include <iterator>

namespace crmsync {

namespace {

constexpr const char* calendar_state_names[] = {
    "disabled", "enabling",  "initial_sync", "active",
    "held",     "disabling", "error",
};

} // namespace

const char* to_string(calendar_state x) {
  auto i = static_cast<size_t>(x);
  return i < std::size(calendar_state_names) ? calendar_state_names[i]
                                             : "error";
}

bool from_string(std::string_view s, calendar_state& x) {
  for (size_t i = 0; i < std::size(calendar_state_names); ++i)
    if (s == calendar_state_names[i]) {
      x = static_cast<calendar_state>(i);
      return true;
    }
  return false;
}

const char* to_string(entity_kind k) {
  switch (k) {
    case entity_kind::tenant:
      return "tenant";
    case entity_kind::mailbox:
      return "mailbox";
    default:
      return "calendar";
  }
}

} // namespace crmsync
