// Graph's change and lifecycle notifications as they reach the webhook: a
// POST body `{"value":[…]}` decoded into plain values before anything is
// looked up (the engine then checks each one's subscription and
// clientState).
//
// Untrusted input from the network. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace crmsync::sync {

/// The fields of one notification crmsync reads; each is "" when missing
/// or not a string (an item without a subscription id is refused).
struct notification {
  std::string subscription_id;
  std::string client_state;
  std::string lifecycle_event; ///< lifecycle notifications only
};

/// Every item of the collection, in order; false when the body is not
/// JSON or has no `value` array.
bool parse_notifications(std::string_view body, std::vector<notification>& out);

} // namespace crmsync::sync
