// Graph notification collections (sync/notifications.hpp), as the webhook
// receives them.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "sync/notifications.hpp"

using namespace crmsync::sync;

TEST_CASE("a change notification collection gives each item's fields",
          "[sync][notifications]") {
  std::vector<notification> items;
  REQUIRE(parse_notifications(
      R"({"value":[
        {"subscriptionId":"7f10","clientState":"secret","changeType":"created",
         "resource":"Users/u/Events/e","resourceData":{"id":"e"}},
        {"subscriptionId":"7f11"},
        {"clientState":"secret"},
        {"subscriptionId":42,"clientState":null}]})",
      items));
  REQUIRE(items.size() == 4);
  CHECK(items[0].subscription_id == "7f10");
  CHECK(items[0].client_state == "secret");
  CHECK(items[0].lifecycle_event.empty());
  CHECK(items[1].client_state.empty());
  CHECK(items[2].subscription_id.empty()); // refused by the engine
  CHECK(items[3].subscription_id.empty());
  CHECK(items[3].client_state.empty());
}

TEST_CASE("a lifecycle notification names its event", "[sync][notifications]") {
  std::vector<notification> items;
  REQUIRE(parse_notifications(
      R"({"value":[{"subscriptionId":"7f10","clientState":"secret",
                    "lifecycleEvent":"subscriptionRemoved"}]})",
      items));
  REQUIRE(items.size() == 1);
  CHECK(items[0].lifecycle_event == "subscriptionRemoved");
}

TEST_CASE("a body that is not a collection is refused",
          "[sync][notifications]") {
  std::vector<notification> items{notification{}};
  CHECK_FALSE(parse_notifications("", items));
  CHECK(items.empty());
  CHECK_FALSE(parse_notifications(R"({"value":{}})", items));
  CHECK_FALSE(parse_notifications(R"([{"subscriptionId":"7f10"}])", items));
  CHECK_FALSE(parse_notifications(R"({"value":[)", items));
  CHECK(parse_notifications(R"({"value":[]})", items));
  CHECK(items.empty());
}
