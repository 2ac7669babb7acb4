#include "sync/notifications.hpp"

#include <simdjson.h>

namespace crmsync::sync {

namespace {

std::string text(simdjson::dom::element v, const char* key) {
  std::string_view s;
  if (v[key].get_string().get(s))
    return {};
  return std::string{s};
}

} // namespace

bool parse_notifications(std::string_view body,
                         std::vector<notification>& out) {
  out.clear();
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array items;
  if (parser.parse(body.data(), body.size()).get(doc)
      || doc["value"].get_array().get(items))
    return false;
  for (simdjson::dom::element n : items) {
    notification one;
    one.subscription_id = text(n, "subscriptionId");
    one.client_state = text(n, "clientState");
    one.lifecycle_event = text(n, "lifecycleEvent");
    out.push_back(std::move(one));
  }
  return true;
}

} // namespace crmsync::sync
