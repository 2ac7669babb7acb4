#include "common/metrics.hpp"

#include <sstream>
#include <string>

#include <catch2/catch.hpp>

using namespace crmsync;
using metrics::registry;

namespace {

/// The value of the sample line that starts with `series` + ' ', or -1.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(series + " ", 0) == 0)
      return std::stod(line.substr(series.size() + 1));
  return -1;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

} // namespace

TEST_CASE("a fresh registry shows every family of the contract at zero",
          "[common][metrics]") {
  registry r;
  auto text = r.render();
  // Families whose series need a label value from an event (route,
  // status) show from their first event on.
  CHECK(text.find("crmsync_http_requests_total") == std::string::npos);
  CHECK(has_line(text, "# TYPE crmsync_graph_request_duration_seconds "
                       "histogram"));
  CHECK(sample(text, "crmsync_graph_throttled_total") == 0);
  for (auto kind : {"change", "lifecycle"})
    for (auto outcome : {"received", "acknowledged", "rejected"})
      CHECK(sample(text, std::string{"crmsync_notifications_total{kind=\""}
                             + kind + "\",outcome=\"" + outcome + "\"}")
            == 0);
  CHECK(sample(text, "crmsync_sync_inbox_depth") == 0);
  CHECK(sample(text, "crmsync_sync_outbox_depth") == 0);
  CHECK(sample(text, "crmsync_mail_outbox_depth") == 0);
  for (auto kind : {"tenant", "mailbox", "calendar"}) {
    std::string k = std::string{"{kind=\""} + kind + "\"}";
    CHECK(sample(text, "crmsync_actor_activations_total" + k) == 0);
    CHECK(sample(text, "crmsync_actor_passivations_total" + k) == 0);
    CHECK(sample(text, "crmsync_actors_active" + k) == 0);
  }
  CHECK(sample(text, "crmsync_subscriptions{state=\"live\"}") == 0);
  CHECK(sample(text, "crmsync_subscriptions{state=\"expiring\"}") == 0);
  CHECK(sample(text, "crmsync_sync_lag_seconds_count{direction=\"to_crm\"}")
        == 0);
  CHECK(
      sample(text, "crmsync_sync_lag_seconds_count{direction=\"to_office365\"}")
      == 0);
}

TEST_CASE("HTTP requests count by method, route and status, with latency "
          "buckets by route",
          "[common][metrics]") {
  registry r;
  r.http_request("GET", "/api/v1/orgs/{org}", 200, 0.0007);
  r.http_request("GET", "/api/v1/orgs/{org}", 200, 0.2);
  r.http_request("GET", "/api/v1/orgs/{org}", 404, 3);
  r.http_request("BREW", "unmatched", 404, 0.0001);
  auto text = r.render();
  CHECK(sample(text, "crmsync_http_requests_total{method=\"GET\",route=\"/api/"
                     "v1/orgs/{org}\",status=\"200\"}")
        == 2);
  CHECK(sample(text, "crmsync_http_requests_total{method=\"GET\",route=\"/api/"
                     "v1/orgs/{org}\",status=\"404\"}")
        == 1);
  // Unknown verbs never make new series.
  CHECK(sample(text, "crmsync_http_requests_total{method=\"other\",route="
                     "\"unmatched\",status=\"404\"}")
        == 1);
  std::string h = "crmsync_http_request_duration_seconds";
  std::string route = "route=\"/api/v1/orgs/{org}\"";
  CHECK(sample(text, h + "_count{" + route + "}") == 3);
  CHECK(sample(text, h + "_sum{" + route + "}") == Approx(3.2007));
  CHECK(sample(text, h + "_bucket{" + route + ",le=\"0.0005\"}") == 0);
  CHECK(sample(text, h + "_bucket{" + route + ",le=\"0.001\"}") == 1);
  CHECK(sample(text, h + "_bucket{" + route + ",le=\"0.25\"}") == 2);
  CHECK(sample(text, h + "_bucket{" + route + ",le=\"2.5\"}") == 2);
  CHECK(sample(text, h + "_bucket{" + route + ",le=\"5\"}") == 3);
  CHECK(sample(text, h + "_bucket{" + route + ",le=\"+Inf\"}") == 3);
}

TEST_CASE("Graph exchanges count by status, transport failures as error",
          "[common][metrics]") {
  registry r;
  r.graph_request(200, 0.01);
  r.graph_request(429, 0.01);
  r.graph_request(0, 1.5);
  r.graph_request(-3, 0.1);
  r.graph_throttled();
  r.graph_throttled();
  auto text = r.render();
  CHECK(sample(text, "crmsync_graph_requests_total{status=\"200\"}") == 1);
  CHECK(sample(text, "crmsync_graph_requests_total{status=\"429\"}") == 1);
  CHECK(sample(text, "crmsync_graph_requests_total{status=\"error\"}") == 2);
  CHECK(sample(text, "crmsync_graph_throttled_total") == 2);
  CHECK(sample(text, "crmsync_graph_request_duration_seconds_count") == 4);
}

TEST_CASE("notifications, actors, lag and gauges", "[common][metrics]") {
  registry r;
  using metrics::notification_kind;
  using metrics::notification_outcome;
  r.notifications(notification_kind::change, notification_outcome::received, 3);
  r.notifications(notification_kind::change, notification_outcome::acknowledged,
                  2);
  r.notifications(notification_kind::change, notification_outcome::rejected);
  r.notifications(notification_kind::lifecycle, notification_outcome::received,
                  0);
  r.actor_activated("tenant");
  r.actor_activated("tenant");
  r.actor_activated("calendar");
  r.actor_stopped("tenant", true);
  r.actor_stopped("calendar", false); // failed: not a passivation
  r.actor_activated("no-such-kind");  // ignored, no new series
  r.sync_lag(metrics::sync_direction::to_crm, 0.3);
  r.sync_lag(metrics::sync_direction::to_office365, -1); // clock skew: 0
  r.set_depth(metrics::depth::sync_outbox, 7);
  r.set_subscriptions(4, 1);
  r.set_sync_users({{"active", 3}, {"error", 1}});
  r.set_sync_users({{"active", 4}});
  auto text = r.render();
  CHECK(sample(text, "crmsync_notifications_total{kind=\"change\",outcome="
                     "\"received\"}")
        == 3);
  CHECK(sample(text, "crmsync_notifications_total{kind=\"change\",outcome="
                     "\"acknowledged\"}")
        == 2);
  CHECK(sample(text, "crmsync_notifications_total{kind=\"change\",outcome="
                     "\"rejected\"}")
        == 1);
  CHECK(sample(text, "crmsync_notifications_total{kind=\"lifecycle\","
                     "outcome=\"received\"}")
        == 0);
  CHECK(sample(text, "crmsync_actor_activations_total{kind=\"tenant\"}") == 2);
  CHECK(sample(text, "crmsync_actor_passivations_total{kind=\"tenant\"}") == 1);
  CHECK(sample(text, "crmsync_actors_active{kind=\"tenant\"}") == 1);
  CHECK(sample(text, "crmsync_actor_passivations_total{kind=\"calendar\"}")
        == 0);
  CHECK(sample(text, "crmsync_actors_active{kind=\"calendar\"}") == 0);
  CHECK(text.find("no-such-kind") == std::string::npos);
  CHECK(sample(text, "crmsync_sync_lag_seconds_count{direction=\"to_crm\"}")
        == 1);
  CHECK(sample(text, "crmsync_sync_lag_seconds_bucket{direction=\"to_crm\","
                     "le=\"0.25\"}")
        == 0);
  CHECK(sample(text, "crmsync_sync_lag_seconds_bucket{direction=\"to_crm\","
                     "le=\"0.5\"}")
        == 1);
  CHECK(sample(text, "crmsync_sync_lag_seconds_sum{direction=\"to_office365\"}")
        == 0);
  CHECK(sample(text, "crmsync_sync_outbox_depth") == 7);
  CHECK(sample(text, "crmsync_subscriptions{state=\"live\"}") == 4);
  CHECK(sample(text, "crmsync_subscriptions{state=\"expiring\"}") == 1);
  CHECK(sample(text, "crmsync_sync_users{state=\"active\"}") == 4);
  // A state nobody is in any more drops to 0 rather than keep its count.
  CHECK(sample(text, "crmsync_sync_users{state=\"error\"}") == 0);
}

TEST_CASE("label values are escaped in the text format", "[common][metrics]") {
  registry r;
  r.http_request("GET", "/a\"b\\c\nd", 200, 0.001);
  auto text = r.render();
  CHECK(text.find(R"(route="/a\"b\\c\nd")") != std::string::npos);
}

TEST_CASE("node() is one registry for the process", "[common][metrics]") {
  CHECK(&metrics::node() == &metrics::node());
  CHECK(std::string{metrics::content_type}
        == "text/plain; version=0.0.4; charset=utf-8");
}
