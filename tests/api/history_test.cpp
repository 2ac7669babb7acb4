// The admin page's chart history ring (api/history.hpp, t16-admin): fixed
// size per series, oldest dropped first, points served oldest first.
#include <catch2/catch.hpp>

#include <chrono>

#include "api/history.hpp"

using crmsync::http::chart_history;
using crmsync::http::history_point;

namespace {

history_point at(int64_t ms, double total) {
  history_point p;
  p.at_ms = ms;
  p.values["2xx"] = total;
  return p;
}

} // namespace

TEST_CASE("chart history keeps window / interval points per series, the "
          "oldest dropped first",
          "[history]") {
  using namespace std::chrono;
  chart_history h{seconds(10), minutes(1)};
  CHECK(h.capacity() == 6);
  CHECK(h.points("http").empty());
  for (int i = 0; i < 4; ++i)
    h.record("http", at(i * 10'000, i));
  auto four = h.points("http");
  REQUIRE(four.size() == 4);
  CHECK(four.front().at_ms == 0);
  CHECK(four.back().at_ms == 30'000);

  // Past the capacity: the newest 6, oldest first, many times around.
  for (int i = 4; i < 23; ++i)
    h.record("http", at(i * 10'000, i));
  auto full = h.points("http");
  REQUIRE(full.size() == 6);
  for (size_t k = 0; k < full.size(); ++k) {
    CHECK(full[k].at_ms == static_cast<int64_t>(17 + k) * 10'000);
    CHECK(full[k].values.at("2xx") == 17 + k);
  }
  // Series are apart; an unknown one holds nothing and takes nothing.
  CHECK(h.points("graph").empty());
  h.record("nope", at(0, 1));
  CHECK(h.points("nope").empty());
}

TEST_CASE("chart history samples every charted series at once", "[history]") {
  chart_history h{std::chrono::seconds(1)};
  CHECK(h.capacity() == 3600);
  h.sample(1'000);
  h.sample(2'000);
  for (auto& s : chart_history::series_names()) {
    auto pts = h.points(s);
    REQUIRE(pts.size() == 2);
    CHECK(pts[0].at_ms == 1'000);
    CHECK(pts[1].at_ms == 2'000);
  }
  // The throttling series has its one key from the start (at 0).
  CHECK(h.points("graph_throttled").back().values.count("429") == 1);
}
