#include "emulator/service_impl.hpp"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <random>
#include <simdjson.h>
#include <thread>

#include "common/crypto.hpp"
#include "common/text.hpp"
#include "common/time_format.hpp"
#include "emulator/jwt_signer.hpp"
#include "emulator/model.hpp"
#include "emulator/notifier.hpp"
#include "emulator/time_zones.hpp"
#include "http/router.hpp"
#include "http/url.hpp"
#include "protocol/json.hpp"

namespace crmsync::emulator {

// Routes by resource, each installed by its own file; control first, as
// before the split.
void service::impl::install_routes() {
  install_control_routes();
  install_identity_routes();
  install_users_routes();
  install_calendars_routes();
  install_events_routes();
  install_delta_routes();
  install_subscriptions_routes();
  install_mail_routes();
}

service::service(service_config cfg)
    : impl_(std::make_unique<impl>(std::move(cfg))) {
  if (!impl_->cfg.now_ms)
    impl_->cfg.now_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  impl_->install_routes();
}

service::~service() = default;

void service::impl::dispatch(request& req, responder_ptr r) {
  // current_slot names this request's slot only while its handler runs.
  struct slot_scope {
    mailbox_slot* saved = current_slot;
    ~slot_scope() {
      current_slot = saved;
    }
  } scope;
  current_slot = nullptr;
  // Graph authenticates before it looks at the query or body: a client
  // with an expired token hears about the token, not its parameters.
  if (req.path.rfind("/v1.0/", 0) == 0) {
    std::lock_guard<std::mutex> guard{mtx};
    response err;
    if (check_token(req, err) == nullptr)
      return r->reply(std::move(err));
    // Injected faults: transient throttling and outages, then latency.
    if (roll(fault.throttle_rate)) {
      ++struck.throttles;
      auto res = graph_error(req, 429, "TooManyRequests",
                             "Please retry again later.", now());
      res.headers.emplace_back("Retry-After", "1");
      return r->reply(std::move(res));
    }
    if (roll(fault.access_denied_rate)) {
      ++struck.access_denied;
      return r->reply(graph_error(
          req, 403, "ErrorAccessDenied",
          "Access is denied. Check credentials and try again.", now()));
    }
    if (roll(fault.mailbox_disabled_rate)) {
      ++struck.mailbox_disabled;
      return r->reply(graph_error(req, 404, "MailboxNotEnabledForRESTAPI",
                                  "The mailbox is either inactive, "
                                  "soft-deleted, or is hosted on-premise.",
                                  now()));
    }
    if (!fault.refuse_text.empty()
        && (req.method == "POST" || req.method == "PATCH")
        && req.path.find("/events") != std::string::npos
        && req.body.find(fault.refuse_text) != std::string::npos) {
      ++struck.refused_events;
      return r->reply(graph_error(
          req, static_cast<int>(fault.refuse_status), fault.refuse_code,
          "This event is refused (graph-emulator's refuse_text fault).",
          now()));
    }
    if (roll(fault.error_rate)) {
      ++struck.errors;
      auto res = graph_error(req, 503, "ServiceUnavailable",
                             "The service is temporarily unavailable.", now());
      res.headers.emplace_back("Retry-After", "1");
      return r->reply(std::move(res));
    }
    auto delay = dispatching_batch_items ? 0 : fault.latency_ms;
    if (fault.jitter_ms > 0 && !dispatching_batch_items)
      delay += static_cast<int64_t>(
          dice() % static_cast<uint64_t>(fault.jitter_ms + 1));
    auto slot = std::make_shared<mailbox_slot>(
        std::move(r), [this](const mailbox_key& k) { release(k); });
    current_slot = slot.get();
    r = slot;
    if (delay > 0)
      r = delayed.wrap(std::move(r), std::chrono::milliseconds(delay));
  }
  const http::route_handler* h = nullptr;
  http::path_params params;
  std::string allow;
  switch (routes.match(req, h, params, allow)) {
    case http::router::outcome::matched:
      (*h)(req, params, std::move(r));
      return;
    case http::router::outcome::wrong_method: {
      auto res = graph_error(req, 405, "Request_BadRequest",
                             "The HTTP method '" + req.method
                                 + "' is not supported for this resource.",
                             now());
      res.headers.emplace_back("Allow", allow);
      r->reply(std::move(res));
      return;
    }
    default:
      r->reply(graph_error(
          req, 400, "BadRequest",
          "Resource not found for the segment '" + req.path + "'.", now()));
  }
}

namespace {

/// Keeps the answer of one request inside a $batch (handlers here answer
/// synchronously, before dispatch returns).
class captured_response : public http::responder {
public:
  void reply(response r) override {
    res = std::move(r);
    answered = true;
  }
  response res;
  bool answered = false;
};

constexpr size_t max_batch = 20;

} // namespace

/// POST /v1.0/$batch: up to 20 requests, run in order, each answered with
/// its own status, headers and body; a failed dependency gives 424.
void service::impl::batch(request& req, responder_ptr r) {
  object o;
  body_error err;
  simdjson::dom::array items;
  if (!parse_body(req.body, o, err) || o["requests"].get_array().get(items))
    return r->reply(graph_error(req, 400, "BadRequest",
                                "Invalid batch payload format.", now()));
  if (items.size() > max_batch)
    return r->reply(graph_error(
        req, 400, "BadRequest",
        "The number of batch requests exceeds the limit of 20.", now()));
  struct item {
    std::string id, method, url, body;
    http::header_fields headers;
    std::vector<std::string> depends_on;
  };
  std::vector<item> list;
  std::set<std::string> ids;
  for (element e : items) {
    item it;
    std::string_view sv;
    if (e["id"].get_string().get(sv) || sv.empty()
        || !member_string(e, "method", it.method)
        || !member_string(e, "url", it.url))
      return r->reply(graph_error(req, 400, "BadRequest",
                                  "Each request needs id, method and url.",
                                  now()));
    it.id.assign(sv);
    // Batch ids are case-insensitive and must be unique.
    if (!ids.insert(ascii_lower(it.id)).second)
      return r->reply(graph_error(
          req, 400, "BadRequest",
          "Batch request ids must be unique: '" + it.id + "'.", now()));
    for (auto& c : it.method)
      if (c >= 'a' && c <= 'z')
        c = static_cast<char>(c - 'a' + 'A');
    object hdrs;
    if (!e["headers"].get_object().get(hdrs))
      for (auto kv : hdrs) {
        std::string_view v;
        if (!kv.value.get_string().get(v))
          it.headers.emplace_back(ascii_lower(kv.key), std::string{v});
      }
    element body;
    if (!e["body"].get(body))
      it.body = to_json_text(body);
    simdjson::dom::array deps;
    if (!e["dependsOn"].get_array().get(deps))
      for (element d : deps)
        if (!d.get_string().get(sv))
          it.depends_on.emplace_back(sv);
    list.push_back(std::move(it));
  }
  std::map<std::string, int> status_of;
  json::writer w;
  w.begin_object().key("responses").begin_array();
  for (auto& it : list) {
    response res;
    bool failed_dep = false;
    for (auto& d : it.depends_on) {
      auto s = status_of.find(ascii_lower(d));
      if (s == status_of.end() || s->second >= 400)
        failed_dep = true;
    }
    if (failed_dep) {
      res = graph_error(req, 424, "FailedDependency",
                        "A request this one depends on failed.", now());
    } else {
      request sub;
      sub.method = it.method;
      // Item URLs are relative, with or without the version prefix.
      std::string url = it.url;
      if (url.empty() || url[0] != '/')
        url = "/" + url;
      if (url.rfind("/v1.0/", 0) != 0)
        url = "/v1.0" + url;
      auto q = url.find('?');
      sub.target = url;
      if (q != std::string::npos)
        sub.query = url.substr(q + 1);
      if (!http::percent_decode(url.substr(0, q), sub.path, false))
        sub.path = url.substr(0, q);
      sub.headers = it.headers;
      for (auto& [k, v] : req.headers)
        if (k == "authorization" || k == "host" || k == "x-forwarded-proto")
          sub.headers.emplace_back(k, v);
      sub.body = it.body;
      auto cap = std::make_shared<captured_response>();
      struct batch_scope {
        bool saved = dispatching_batch_items;
        batch_scope() {
          dispatching_batch_items = true;
        }
        ~batch_scope() {
          dispatching_batch_items = saved;
        }
      } scope;
      dispatch(sub, cap);
      res = cap->answered ? std::move(cap->res)
                          : graph_error(req, 500, "InternalServerError",
                                        "no answer", now());
    }
    status_of[ascii_lower(it.id)] = res.status;
    w.begin_object();
    w.key("id").value(it.id);
    w.key("status").value(static_cast<int64_t>(res.status));
    w.key("headers").begin_object();
    for (auto& [k, v] : res.headers)
      w.key(k).value(v);
    if (!res.body.empty())
      w.key("Content-Type").value(res.content_type);
    w.end_object();
    if (!res.body.empty()) {
      if (res.content_type.rfind("application/json", 0) == 0)
        w.key("body").raw(res.body);
      else
        w.key("body").value(res.body);
    }
    w.end_object();
  }
  w.end_array().end_object();
  r->reply(json_response(200, w.take()));
}

namespace {

/// Adds one header to whatever answer passes through.
class header_adder : public http::responder {
public:
  header_adder(responder_ptr inner, std::string name, std::string value)
      : inner_(std::move(inner))
      , name_(std::move(name))
      , value_(std::move(value)) {}
  void reply(response r) override {
    r.headers.emplace_back(name_, value_);
    inner_->reply(std::move(r));
  }

private:
  responder_ptr inner_;
  std::string name_;
  std::string value_;
};

/// Graph's correlation headers on every answer of a Graph route: the
/// answer's `request-id` (a new GUID, unless the handler named its own),
/// `client-request-id` echoing the client's (or, when it sent none, the
/// request-id, as Graph does) and `Date`. Microsoft asks clients to log
/// all three for support (microsoft-graph-docs-contrib
/// concepts/best-practices-concept.md, "Reliability and support";
/// concepts/errors.md shows request-id and date in innerError).
class graph_ids : public http::responder {
public:
  graph_ids(responder_ptr inner, std::string client_request_id, int64_t now)
      : inner_(std::move(inner))
      , client_request_id_(std::move(client_request_id))
      , now_(now) {}
  void reply(response r) override {
    std::string request_id;
    for (auto& [name, value] : r.headers)
      if (name == "request-id")
        request_id = value;
    if (request_id.empty()) {
      request_id = new_guid();
      r.headers.emplace_back("request-id", request_id);
    }
    r.headers.emplace_back("client-request-id", client_request_id_.empty()
                                                    ? request_id
                                                    : client_request_id_);
    r.headers.emplace_back("Date", format_http_date(now_));
    inner_->reply(std::move(r));
  }

private:
  responder_ptr inner_;
  std::string client_request_id_;
  int64_t now_;
};

} // namespace

void service::handle(http::request&& req, http::responder_ptr r) {
  if (req.path.rfind("/v1.0/", 0) == 0) {
    // Echoed as sent: a value that cannot be a header value is dropped.
    std::string client_id{req.header("client-request-id")};
    if (client_id.size() > 128
        || client_id.find_first_of("\r\n") != std::string::npos)
      client_id.clear();
    r = std::make_shared<graph_ids>(std::move(r), std::move(client_id),
                                    impl_->now());
  }
  // Ids never change here (nothing moves between folders), so immutable
  // ids are what the emulator always serves; it says so as Graph does.
  if (req.header("prefer").find("IdType=\"ImmutableId\"")
      != std::string_view::npos)
    r = std::make_shared<header_adder>(std::move(r), "Preference-Applied",
                                       "IdType=\"ImmutableId\"");
  if (req.method == "POST" && req.path == "/v1.0/$batch") {
    {
      std::lock_guard<std::mutex> guard{impl_->mtx};
      response err;
      if (impl_->check_token(req, err) == nullptr)
        return r->reply(std::move(err));
    }
    return impl_->batch(req, std::move(r));
  }
  impl_->dispatch(req, std::move(r));
}

} // namespace crmsync::emulator
