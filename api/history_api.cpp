// The admin page's chart history (t16-admin): the rings of api/history.hpp
// and GET /admin/v1/history, which serves them (service admin token).
#include "api/history.hpp"

#include <algorithm>
#include <cmath>

#include "api/api_impl.hpp"
#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "common/thread_name.hpp"

namespace crmsync::http {

namespace {

/// What each series reads: a counter family, the label it is split by,
/// and how a label value becomes the series' key.
struct series_source {
  const char* name;
  const char* family;
  const char* label;
  std::string (*key)(const std::string& label_value);
};

std::string as_is(const std::string& v) {
  return v;
}

/// "200" -> "2xx", as the page's HTTP chart groups statuses.
std::string status_class(const std::string& v) {
  return v.empty() ? std::string{"other"} : v.substr(0, 1) + "xx";
}

std::string throttled(const std::string&) {
  return "429";
}

const series_source sources[] = {
    {"http", "crmsync_http_requests_total", "status", status_class},
    {"graph", "crmsync_graph_requests_total", "status", as_is},
    {"graph_throttled", "crmsync_graph_throttled_total", "", throttled},
    {"notifications", "crmsync_notifications_total", "outcome", as_is},
};

} // namespace

const std::vector<std::string>& chart_history::series_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (auto& s : sources)
      out.emplace_back(s.name);
    return out;
  }();
  return names;
}

chart_history::chart_history(std::chrono::milliseconds interval,
                             std::chrono::milliseconds window)
    : interval_(std::max(interval, std::chrono::milliseconds{1}))
    , capacity_(std::max<size_t>(
          2, static_cast<size_t>(window.count() / interval_.count()))) {
  for (auto& name : series_names())
    rings_[name];
}

chart_history::~chart_history() {
  stop();
}

void chart_history::start() {
  std::lock_guard<std::mutex> guard{run_mtx_};
  if (sampler_.joinable())
    return;
  stopping_ = false;
  sampler_ = std::thread{[this] {
    name_this_thread("chart-history");
    std::unique_lock<std::mutex> lock{run_mtx_};
    auto next = std::chrono::steady_clock::now();
    while (!stopping_) {
      lock.unlock();
      sample(system_now_ms());
      lock.lock();
      next += interval_;
      wake_.wait_until(lock, next, [this] { return stopping_; });
    }
  }};
}

void chart_history::stop() {
  std::thread t;
  {
    std::lock_guard<std::mutex> guard{run_mtx_};
    stopping_ = true;
    t = std::move(sampler_);
  }
  wake_.notify_all();
  if (t.joinable())
    t.join();
}

void chart_history::record(const std::string& series, history_point p) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = rings_.find(series);
  if (i == rings_.end())
    return;
  auto& r = i->second;
  if (r.slots.size() < capacity_) {
    r.slots.push_back(std::move(p));
  } else {
    r.slots[r.next] = std::move(p);
    r.next = (r.next + 1) % capacity_;
  }
}

void chart_history::sample(int64_t at_ms) {
  auto& m = metrics::node();
  for (auto& s : sources) {
    history_point p;
    p.at_ms = at_ms;
    for (auto& [label, total] : m.totals(s.family, s.label))
      p.values[s.key(label)] += total;
    record(s.name, std::move(p));
  }
}

std::vector<history_point>
chart_history::points(const std::string& series) const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<history_point> out;
  auto i = rings_.find(series);
  if (i == rings_.end())
    return out;
  auto& r = i->second;
  // Until the ring is full, `next` stays 0: oldest first either way.
  out.reserve(r.slots.size());
  for (size_t k = 0; k < r.slots.size(); ++k)
    out.push_back(r.slots[(r.next + k) % r.slots.size()]);
  return out;
}

void api::impl::install_history_routes() {
  history = std::make_unique<chart_history>(cfg.chart_history_interval);
  history->start();
  auto self = this; // routes live as long as the impl that owns them
  routes.add("GET", "/admin/v1/history",
             [self](request& req, const path_params&, responder_ptr r) {
               if (self->admin_auth(req, r))
                 self->admin_history(req, r);
             });
}

void api::impl::admin_history(const request& req, const responder_ptr& r) {
  query_params q;
  if (!read_query(req, r, q))
    return;
  const auto& all = chart_history::series_names();
  std::vector<std::string> wanted;
  if (auto s = find_param(q, "series")) {
    size_t at = 0;
    while (at <= s->size()) {
      auto comma = s->find(',', at);
      auto name = s->substr(at, comma == std::string::npos ? std::string::npos
                                                           : comma - at);
      if (std::find(all.begin(), all.end(), name) == all.end()) {
        std::string known;
        for (auto& n : all)
          known += (known.empty() ? "" : ", ") + n;
        return fail(r, 400, "invalid_field",
                    "'series' names series of " + known
                        + " (comma-separated); not '" + name + "'",
                    "series");
      }
      if (std::find(wanted.begin(), wanted.end(), name) == wanted.end())
        wanted.push_back(name);
      if (comma == std::string::npos)
        break;
      at = comma + 1;
    }
  } else {
    wanted = all;
  }
  json::writer w;
  w.begin_object();
  w.key("node_id").value(info.node_id);
  w.key("interval_s")
      .value(static_cast<int64_t>(history->interval().count() / 1000));
  w.key("capacity").value(static_cast<uint64_t>(history->capacity()));
  w.key("series").begin_object();
  for (auto& name : wanted) {
    w.key(name).begin_array();
    for (auto& p : history->points(name)) {
      w.begin_object();
      w.key("at").value(format_rfc3339_ms(p.at_ms));
      w.key("values").begin_object();
      for (auto& [k, v] : p.values)
        w.key(k).value(static_cast<uint64_t>(std::llround(v)));
      w.end_object().end_object();
    }
    w.end_array();
  }
  w.end_object().end_object();
  r->reply(json_response(200, w.take()));
}

} // namespace crmsync::http
