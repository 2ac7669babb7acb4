#include "protocol/messages.hpp"

namespace crmsync {

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
