#include "emulator/service.hpp"

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

namespace {

using http::request;
using http::responder_ptr;
using http::response;
using simdjson::dom::element;
using simdjson::dom::object;

constexpr size_t default_user_page = 100;
constexpr size_t default_event_page = 10;

// -- identifiers --------------------------------------------------------------

std::string new_guid() {
  uint64_t a = crypto::random_u64();
  uint64_t b = crypto::random_u64();
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08llx-%04llx-4%03llx-%04llx-%012llx",
                static_cast<unsigned long long>(a >> 32),
                static_cast<unsigned long long>((a >> 16) & 0xffff),
                static_cast<unsigned long long>(a & 0xfff),
                static_cast<unsigned long long>(((b >> 48) & 0x3fff) | 0x8000),
                static_cast<unsigned long long>(b & 0xffffffffffffull));
  return buf;
}

/// Outlook item ids are long, opaque, case-sensitive base64 strings.
std::string new_item_id() {
  return "AAMkA" + crypto::random_token(48);
}

std::string new_change_key() {
  return crypto::random_token(18);
}

// -- responses
// ------------------------------------------------------------------

response json_response(int status, std::string body) {
  response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.emplace_back("request-id", new_guid());
  return r;
}

/// Graph's error shape: {"error":{"code","message","innerError":{…}}}.
response graph_error(const request& req, int status, std::string_view code,
                     std::string_view message, int64_t now) {
  auto request_id = new_guid();
  json::writer w;
  w.begin_object().key("error").begin_object();
  w.key("code").value(code);
  w.key("message").value(message);
  w.key("innerError").begin_object();
  w.key("date").value(format_rfc3339(now - now % 1000));
  w.key("request-id").value(request_id);
  auto client_id = req.header("client-request-id");
  w.key("client-request-id")
      .value(client_id.empty() ? request_id : std::string{client_id});
  w.end_object().end_object().end_object();
  response r;
  r.status = status;
  r.body = w.take();
  r.headers.emplace_back("request-id", request_id);
  return r;
}

/// The identity platform's OAuth error shape.
response oauth_error(int status, std::string_view error, int code,
                     std::string_view description, int64_t now) {
  json::writer w;
  w.begin_object();
  w.key("error").value(error);
  w.key("error_description")
      .value("AADSTS" + std::to_string(code) + ": " + std::string{description});
  w.key("error_codes").begin_array().value(int64_t{code}).end_array();
  w.key("timestamp").value(format_rfc3339(now - now % 1000));
  w.key("trace_id").value(new_guid());
  w.key("correlation_id").value(new_guid());
  w.end_object();
  response r;
  r.status = status;
  r.body = w.take();
  return r;
}

/// The request path as sent (still percent-encoded), for links back to it.
std::string raw_path(const request& req) {
  return req.target.substr(0, req.target.find('?'));
}

/// Absolute URLs use the scheme and host the client used.
std::string base_url(const request& req) {
  auto host = req.header("host");
  auto proto = req.header("x-forwarded-proto");
  std::string scheme = !proto.empty() ? std::string{proto}
                       : req.secure   ? "https"
                                      : "http";
  return scheme + "://" + std::string{host.empty() ? "localhost" : host};
}

// "2026-12-01T10:00:00.0000000", Graph's dateTime in a dateTimeTimeZone.
std::string graph_date_time(int64_t ms) {
  auto s = format_rfc3339_ms(ms); // 2026-12-01T10:00:00.000Z
  return s.substr(0, 23) + "0000";
}

const std::string utc_name = "UTC";

/// The zone asked for with `Prefer: outlook.timezone="…"` (reads only),
/// or "" when none or an unknown one was asked for.
std::string preferred_zone(const request& req) {
  auto prefer = req.header("prefer");
  constexpr std::string_view marker = "outlook.timezone=\"";
  auto p = prefer.find(marker);
  if (p == std::string_view::npos)
    return {};
  p += marker.size();
  auto end = prefer.find('"', p);
  if (end == std::string_view::npos)
    return {};
  std::string zone{prefer.substr(p, end - p)};
  return known_time_zone(zone) ? zone : std::string{};
}

/// Marks a response as rendered in the preferred zone, as Graph does.
void applied_zone(response& res, const std::string& zone) {
  if (!zone.empty())
    res.headers.emplace_back("Preference-Applied",
                             "outlook.timezone=\"" + zone + "\"");
}

// -- JSON input
// ----------------------------------------------------------------------

struct body_error {
  std::string code = "BadRequest";
  std::string message;
};

bool parse_body(std::string_view body, object& out, body_error& err) {
  thread_local simdjson::dom::parser parser;
  element doc;
  if (body.empty() || parser.parse(body.data(), body.size()).get(doc)
      || doc.get_object().get(out)) {
    err.message = "Unable to read JSON request payload. Please ensure "
                  "Content-Type header is set and payload is of valid JSON "
                  "format.";
    return false;
  }
  return true;
}

std::string to_json_text(element e) {
  return simdjson::minify(e);
}

bool read_string(element v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s))
    return false;
  out.assign(s);
  return true;
}

/// Reads the string member `name` of an object element.
bool member_string(element obj, const char* name, std::string& out) {
  element v;
  return !obj[name].get(v) && read_string(v, out);
}

/// Reads a dateTimeTimeZone object into UTC milliseconds.
bool read_date_time_zone(element v, const char* name, int64_t& ms,
                         std::string& zone, body_error& err) {
  object o;
  if (v.get_object().get(o)) {
    err.message = std::string{"'"} + name + "' must be a dateTimeTimeZone";
    return false;
  }
  std::string_view dt, tz = "UTC";
  if (o["dateTime"].get_string().get(dt)) {
    err.message = std::string{"'"} + name + ".dateTime' is required";
    return false;
  }
  std::string_view tzv;
  if (!o["timeZone"].get_string().get(tzv))
    tz = tzv;
  if (!known_time_zone(tz)) {
    err.code = "TimeZoneNotSupportedException";
    err.message = "A valid TimeZone value must be specified. The following "
                  "TimeZone value is not supported: '"
                  + std::string{tz} + "'.";
    return false;
  }
  // Graph's dateTime has no offset; a trailing Z is tolerated.
  std::string text{dt};
  if (!text.empty() && (text.back() == 'Z' || text.back() == 'z'))
    text.pop_back();
  auto parsed = parse_rfc3339_ms(text + "Z");
  if (!parsed) {
    err.message = "Cannot convert the literal '" + std::string{dt}
                  + "' to the expected type 'Edm.DateTimeOffset'.";
    return false;
  }
  // The wall time is in `tz`; store the instant.
  if (!local_to_utc(tz, *parsed, ms)) {
    err.message = "Cannot convert '" + std::string{dt} + "' in '"
                  + std::string{tz} + "'.";
    return false;
  }
  zone = std::string{tz};
  return true;
}

} // namespace

// -- the service
// ---------------------------------------------------------------------------

/// "created,updated" -> {"created","updated"} (spaces ignored).
std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

/// https anywhere; plain http only to a loopback host.
bool acceptable_notification_url(const std::string& url) {
  if (url.rfind("https://", 0) == 0)
    return true;
  std::string host, target;
  uint16_t port = 0;
  if (!split_http_url(url, host, port, target))
    return false;
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

/// Faults injected through POST /_emulator/faults.
struct faults {
  int64_t latency_ms = 0;
  int64_t jitter_ms = 0;
  double error_rate = 0;    ///< share of Graph calls answered 503
  double throttle_rate = 0; ///< share of Graph calls answered 429
  /// Share of Graph calls answered 403 ErrorAccessDenied, as while an
  /// administrator has blocked the app's access to mailboxes.
  double access_denied_rate = 0;
  /// Share of Graph calls answered 404 MailboxNotEnabledForRESTAPI, as
  /// after the user's Exchange Online licence was removed.
  double mailbox_disabled_rate = 0;
  /// An event created or updated with this text in its body (say, in its
  /// subject) is answered `refuse_status` `refuse_code` (by default 400
  /// ErrorInvalidProperty, as Outlook refuses an event it can never
  /// accept); "" = none.
  std::string refuse_text;
  int64_t refuse_status = 400;
  std::string refuse_code = "ErrorInvalidProperty";
  double drop_notifications = 0;
  double duplicate_notifications = 0;
  int64_t notification_delay_ms = 0; ///< extra delay before delivery
  /// Share of due change notifications that instead end their subscription
  /// (subscriptionRemoved), as Graph does when it drops a subscription.
  double remove_subscriptions = 0;
};

/// How often each fault struck since the start (or the last reset), so
/// that a test can show its fault happened before it judges the outcome
/// (GET /_emulator/counters).
struct fault_counts {
  uint64_t errors = 0;           ///< Graph calls answered 503
  uint64_t throttles = 0;        ///< Graph calls answered 429
  uint64_t access_denied = 0;    ///< Graph calls answered 403
  uint64_t mailbox_disabled = 0; ///< Graph calls answered 404 (no mailbox)
  uint64_t refused_events = 0;   ///< event writes answered 400
  uint64_t dropped_notifications = 0;
  uint64_t duplicated_notifications = 0;
  uint64_t removed_subscriptions = 0;
};

/// Holds answers back for an injected latency without blocking any I/O
/// thread: a responder wrapped here hands its answer to one timer thread,
/// which passes it on when it is due. Pending answers are sent at once
/// when the line is destroyed.
class delay_line {
public:
  delay_line() : worker_([this] { run(); }) {}

  ~delay_line() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopping_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  responder_ptr wrap(responder_ptr inner, std::chrono::milliseconds delay) {
    return std::make_shared<held>(this, std::move(inner), delay);
  }

private:
  struct pending {
    std::chrono::steady_clock::time_point due;
    responder_ptr target;
    response res;
  };

  class held : public http::responder {
  public:
    held(delay_line* line, responder_ptr inner, std::chrono::milliseconds d)
        : line_(line), inner_(std::move(inner)), delay_(d) {}
    void reply(response r) override {
      line_->schedule(std::chrono::steady_clock::now() + delay_, inner_,
                      std::move(r));
    }

  private:
    delay_line* line_;
    responder_ptr inner_;
    std::chrono::milliseconds delay_;
  };

  void schedule(std::chrono::steady_clock::time_point due, responder_ptr target,
                response r) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      queue_.push_back({due, std::move(target), std::move(r)});
    }
    cv_.notify_all();
  }

  void run() {
    std::unique_lock<std::mutex> lock{mtx_};
    for (;;) {
      if (queue_.empty()) {
        if (stopping_)
          return;
        cv_.wait(lock);
        continue;
      }
      auto first = std::min_element(
          queue_.begin(), queue_.end(),
          [](const pending& a, const pending& b) { return a.due < b.due; });
      if (!stopping_ && first->due > std::chrono::steady_clock::now()) {
        cv_.wait_until(lock, first->due);
        continue;
      }
      auto p = std::move(*first);
      queue_.erase(first);
      lock.unlock();
      p.target->reply(std::move(p.res));
      lock.lock();
    }
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<pending> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

std::string faults_json(const faults& f) {
  json::writer w;
  w.begin_object();
  w.key("latency_ms").value(f.latency_ms);
  w.key("jitter_ms").value(f.jitter_ms);
  w.key("error_rate").raw(std::to_string(f.error_rate));
  w.key("throttle_rate").raw(std::to_string(f.throttle_rate));
  w.key("access_denied_rate").raw(std::to_string(f.access_denied_rate));
  w.key("mailbox_disabled_rate").raw(std::to_string(f.mailbox_disabled_rate));
  w.key("refuse_text").value(f.refuse_text);
  w.key("refuse_status").value(f.refuse_status);
  w.key("refuse_code").value(f.refuse_code);
  w.key("drop_notifications").raw(std::to_string(f.drop_notifications));
  w.key("duplicate_notifications")
      .raw(std::to_string(f.duplicate_notifications));
  w.key("notification_delay_ms").value(f.notification_delay_ms);
  w.key("remove_subscriptions").raw(std::to_string(f.remove_subscriptions));
  w.end_object();
  return w.take();
}

/// Reads `$select` on users (names checked against what the emulator
/// knows); answers 400 itself and returns false on an unknown property.
bool read_user_select(const request& req, const http::query_params& q,
                      const responder_ptr& r, std::vector<std::string>& out,
                      int64_t now) {
  static const std::set<std::string> known{"id",
                                           "displayName",
                                           "mail",
                                           "userPrincipalName",
                                           "accountEnabled",
                                           "businessPhones",
                                           "givenName",
                                           "jobTitle",
                                           "mobilePhone",
                                           "officeLocation",
                                           "preferredLanguage",
                                           "surname"};
  auto v = http::find_param(q, "$select");
  if (v == nullptr)
    return true;
  std::string_view s{*v};
  while (!s.empty()) {
    auto c = s.find(',');
    auto name = std::string{s.substr(0, c)};
    s = c == std::string_view::npos ? std::string_view{} : s.substr(c + 1);
    if (known.count(name) == 0) {
      r->reply(
          graph_error(req, 400, "Request_BadRequest",
                      "Could not find a property named '" + name
                          + "' on type 'Microsoft.DirectoryServices.User'.",
                      now));
      return false;
    }
    out.push_back(name);
  }
  return true;
}

/// Reads a patternedRecurrence; the emulator expands daily and weekly
/// patterns and refuses the others with a clear message.
bool read_recurrence(element v, recurrence_rule& out, body_error& err) {
  static const char* days[] = {"sunday",   "monday", "tuesday", "wednesday",
                               "thursday", "friday", "saturday"};
  auto day_index = [&](std::string_view name) {
    for (unsigned i = 0; i < 7; ++i)
      if (ascii_lower(name) == days[i])
        return static_cast<int>(i);
    return -1;
  };
  err.code = "ErrorInvalidRecurrence";
  recurrence_rule r;
  object o, pattern, range;
  std::string_view type, range_type, start, end;
  if (v.get_object().get(o) || o["pattern"].get_object().get(pattern)
      || o["range"].get_object().get(range)
      || pattern["type"].get_string().get(type)
      || range["type"].get_string().get(range_type)
      || range["startDate"].get_string().get(start)) {
    err.message = "A recurrence needs pattern.type, range.type and "
                  "range.startDate.";
    return false;
  }
  if (type != "daily" && type != "weekly") {
    err.message = "This emulator expands daily and weekly recurrences only, "
                  "not '"
                  + std::string{type} + "'.";
    return false;
  }
  r.weekly = type == "weekly";
  int64_t interval = 1;
  if (!pattern["interval"].get_int64().get(interval) && interval < 1) {
    err.message = "The recurrence interval must be at least 1.";
    return false;
  }
  r.interval = interval;
  simdjson::dom::array list;
  if (!pattern["daysOfWeek"].get_array().get(list))
    for (element d : list) {
      std::string_view name;
      int i = d.get_string().get(name) ? -1 : day_index(name);
      if (i < 0) {
        err.message = "daysOfWeek holds an unknown day.";
        return false;
      }
      r.days_mask |= 1u << i;
    }
  std::string_view first;
  if (!pattern["firstDayOfWeek"].get_string().get(first)) {
    int i = day_index(first);
    if (i < 0) {
      err.message = "firstDayOfWeek is not a day.";
      return false;
    }
    r.first_day = static_cast<unsigned>(i);
  }
  if (r.weekly && r.days_mask == 0) {
    err.message = "A weekly recurrence needs daysOfWeek.";
    return false;
  }
  auto start_ms = parse_date_ms(start);
  if (!start_ms) {
    err.message = "range.startDate must be a date (YYYY-MM-DD).";
    return false;
  }
  r.start_day = *start_ms / 86'400'000;
  if (range_type == "endDate") {
    std::optional<int64_t> end_ms;
    if (!range["endDate"].get_string().get(end))
      end_ms = parse_date_ms(end);
    if (!end_ms || *end_ms < *start_ms) {
      err.message = "range.endDate must be a date on or after startDate.";
      return false;
    }
    r.end_day = *end_ms / 86'400'000;
  } else if (range_type == "numbered") {
    if (range["numberOfOccurrences"].get_int64().get(r.occurrences)
        || r.occurrences < 1) {
      err.message = "range.numberOfOccurrences must be at least 1.";
      return false;
    }
  } else if (range_type != "noEnd") {
    err.message = "range.type must be endDate, noEnd or numbered.";
    return false;
  }
  r.json = to_json_text(v);
  r.active = true;
  out = std::move(r);
  return true;
}

/// The occurrences of a series master overlapping [from, to): copies of the
/// master with their own id, times, iCalUId and originalStart. Bounded, so
/// that an endless series over a wide window cannot run away.
std::vector<event> expand_series(const event& master, int64_t from,
                                 int64_t to) {
  constexpr int64_t day_ms = 86'400'000;
  constexpr size_t max_occurrences = 2000;
  std::vector<event> out;
  const auto& rule = master.recurrence;
  int64_t local_start = master.start_ms;
  utc_to_local(master.start_time_zone, master.start_ms, local_start);
  int64_t time_of_day = ((local_start % day_ms) + day_ms) % day_ms;
  int64_t duration = master.end_ms - master.start_ms;
  int64_t count = 0;
  // Candidate days in order: every interval-th day, or the chosen days of
  // every interval-th week (weeks begin on first_day).
  auto weekday = [](int64_t day) { // 1970-01-01 was a Thursday
    return static_cast<unsigned>(((day % 7) + 7 + 4) % 7);
  };
  int64_t week_start = rule.start_day
                       - static_cast<int64_t>(
                           (weekday(rule.start_day) + 7 - rule.first_day) % 7);
  for (int64_t step = 0; step < 200000 && out.size() < max_occurrences;
       ++step) {
    int64_t day;
    if (rule.weekly) {
      int64_t week = step / 7;
      unsigned slot = static_cast<unsigned>(step % 7);
      day = week_start + week * 7 * rule.interval + slot;
      if (((rule.days_mask >> ((rule.first_day + slot) % 7)) & 1u) == 0)
        continue;
      if (day < rule.start_day)
        continue;
    } else {
      day = rule.start_day + step * rule.interval;
    }
    if (rule.end_day >= 0 && day > rule.end_day)
      break;
    if (rule.occurrences > 0 && count >= rule.occurrences)
      break;
    ++count;
    int64_t start = day * day_ms + time_of_day;
    local_to_utc(master.start_time_zone, start, start);
    if (start >= to)
      break;
    if (start + duration <= from && !(duration == 0 && start >= from))
      continue;
    event occ = master;
    auto date = format_date(day * day_ms);
    date.erase(std::remove(date.begin(), date.end(), '-'), date.end());
    occ.id = master.id + "_" + date;
    occ.ical_uid = master.ical_uid + date;
    occ.start_ms = start;
    occ.end_ms = start + duration;
    occ.recurrence = recurrence_rule{};
    occ.series_master_id = master.id;
    occ.original_start_ms = start;
    out.push_back(std::move(occ));
  }
  return out;
}

/// A series' occurrences as the calendar shows them: exceptions (edited
/// occurrences) in place of their occurrence, cancelled ones left out.
std::vector<event> occurrences_of(const calendar& c, const event& master,
                                  int64_t from, int64_t to) {
  std::vector<event> out;
  for (auto& occ : expand_series(master, from, to)) {
    if (c.cancelled.count(occ.id))
      continue;
    auto x = c.exceptions.find(occ.id);
    out.push_back(x == c.exceptions.end() ? std::move(occ) : x->second);
  }
  return out;
}

/// The occurrence `id` ("{master}_{yyyymmdd}") of a series in the mailbox
/// as the calendar shows it, or nullopt (no such series, date or a
/// cancelled one). `master` is set to the series master when found.
std::optional<event> find_occurrence(const mailbox& mb, const calendar* cal,
                                     const std::string& id,
                                     const event** master) {
  auto bar = id.rfind('_');
  if (bar == std::string::npos || id.size() - bar != 9)
    return std::nullopt;
  auto m = mb.events.find(id.substr(0, bar));
  if (m == mb.events.end() || !m->second.recurrence.active)
    return std::nullopt;
  const calendar* c = cal;
  for (auto& candidate : mb.calendars)
    if (c == nullptr && candidate.id == m->second.calendar_id)
      c = &candidate;
  if (c == nullptr || c->id != m->second.calendar_id)
    return std::nullopt;
  auto day_at
      = parse_date_ms(id.substr(bar + 1, 4) + "-" + id.substr(bar + 5, 2) + "-"
                      + id.substr(bar + 7, 2));
  if (!day_at)
    return std::nullopt;
  int64_t day = *day_at;
  constexpr int64_t day_ms = 86'400'000;
  for (auto& occ :
       occurrences_of(*c, m->second, day - 2 * day_ms, day + 3 * day_ms))
    if (occ.id == id) {
      *master = &m->second;
      return occ;
    }
  return std::nullopt;
}

/// What a calendarView shows of a calendar in [from, to): single events
/// that overlap, and the occurrences of series (never their masters).
template <class Overlaps>
std::vector<event> instances_in(const mailbox& mb, const calendar& c,
                                int64_t from, int64_t to, Overlaps overlaps) {
  std::vector<event> out;
  for (auto& id : c.event_ids) {
    auto& e = mb.events.at(id);
    if (e.recurrence.active) {
      auto occurrences = occurrences_of(c, e, from, to);
      std::move(occurrences.begin(), occurrences.end(),
                std::back_inserter(out));
    } else if (overlaps(e, from, to)) {
      out.push_back(e);
    }
  }
  return out;
}

/// A delta item for an event that is gone (or left the window).
std::string removed_json(const std::string& id) {
  json::writer w;
  w.begin_object();
  w.key("@odata.type").value("#microsoft.graph.event");
  w.key("id").value(id);
  w.key("@removed").begin_object().key("reason").value("deleted");
  w.end_object().end_object();
  return w.take();
}

/// Entra ID's role template id of the Global Administrator role, carried
/// in the `wids` claim of an administrator's tokens.
constexpr const char* global_admin_role
    = "62e90394-69f5-4237-9190-012177145e10";

constexpr int64_t code_lifetime_ms = 10 * 60 * 1000;

/// Appends query parameters to a redirect URI that may already have some.
std::string
with_params(const std::string& uri,
            const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out = uri;
  char sep = uri.find('?') == std::string::npos ? '?' : '&';
  for (auto& [k, v] : params) {
    out += sep;
    out += http::percent_encode(k) + "=" + http::percent_encode(v);
    sep = '&';
  }
  return out;
}

response redirect(const std::string& location) {
  response r;
  r.status = 302;
  r.content_type = "text/html; charset=utf-8";
  r.headers.emplace_back("Location", location);
  r.body = "<html><body>Redirecting.</body></html>";
  return r;
}

using mailbox_key = std::pair<std::string, std::string>;

/// Sits in front of a request's responder and frees its mailbox
/// concurrency slot when the answer finally leaves.
class mailbox_slot : public http::responder {
public:
  mailbox_slot(responder_ptr inner,
               std::function<void(const mailbox_key&)> release)
      : inner_(std::move(inner)), release_(std::move(release)) {}
  ~mailbox_slot() override {
    free();
  }
  void hold(mailbox_key key) {
    free(); // one slot per request
    key_ = std::move(key);
    held_ = true;
  }
  void reply(response r) override {
    free();
    inner_->reply(std::move(r));
  }

private:
  void free() {
    if (held_) {
      held_ = false;
      release_(key_);
    }
  }
  responder_ptr inner_;
  std::function<void(const mailbox_key&)> release_;
  mailbox_key key_;
  bool held_ = false;
};

/// The slot of the request the current thread is dispatching, if any.
thread_local mailbox_slot* current_slot = nullptr;
/// True while the items of a $batch are dispatched: they answer at once
/// (into the batch's answer), and the batch as a whole carries the
/// injected latency.
thread_local bool dispatching_batch_items = false;

struct service::impl {
  service_config cfg;
  jwt_signer signer;
  notifier notifications;

  explicit impl(service_config c)
      : cfg(std::move(c)), notifications(cfg.notifications) {}
  faults fault;                                 ///< guarded by mtx
  fault_counts struck;                          ///< guarded by mtx
  std::mt19937_64 dice{std::random_device{}()}; ///< guarded by mtx

  /// True with probability p (call with mtx held).
  bool roll(double p) {
    return p > 0 && std::uniform_real_distribution<double>{0, 1}(dice) < p;
  }
  std::mutex mtx;
  directory dir;
  http::router routes;

  int64_t now() const {
    return cfg.now_ms();
  }

  void install_routes();

  /// Requests in flight per (client id, user id), for Outlook's
  /// concurrency limit. Its own lock: answers may leave under `mtx`.
  std::mutex inflight_mtx;
  std::map<mailbox_key, size_t> inflight;

  /// Answers held back by injected latency. Declared after `inflight`:
  /// destroying the line sends what it holds, which frees those answers'
  /// mailbox slots, so the slots' counts must still exist then.
  delay_line delayed;

  void release(const mailbox_key& key) {
    std::lock_guard<std::mutex> guard{inflight_mtx};
    auto i = inflight.find(key);
    if (i != inflight.end() && --i->second == 0)
      inflight.erase(i);
  }
  void dispatch(request& req, responder_ptr r);
  void batch(request& req, responder_ptr r);

  // -- lookups (call with mtx held)
  // --------------------------------------------

  tenant* find_tenant(std::string_view id_or_domain) {
    auto i = dir.tenants.find(std::string{id_or_domain});
    if (i != dir.tenants.end())
      return &i->second;
    auto d = dir.tenant_by_domain.find(ascii_lower(id_or_domain));
    if (d == dir.tenant_by_domain.end())
      return nullptr;
    i = dir.tenants.find(d->second);
    return i != dir.tenants.end() ? &i->second : nullptr;
  }

  /// A user by userPrincipalName (case-insensitive), in any tenant.
  user* find_user_by_upn(std::string_view upn) {
    auto i = dir.user_by_upn.find(ascii_lower(upn));
    if (i == dir.user_by_upn.end())
      return nullptr;
    auto u = dir.users.find(i->second);
    return u != dir.users.end() ? &u->second : nullptr;
  }

  /// The person signing in: `login_hint` is their UPN; the tenant in the
  /// path (id or domain) must be theirs unless it is common/organizations.
  user* find_sign_in_user(const std::string& tenant_key,
                          const std::string& login_hint) {
    user* found = find_user_by_upn(login_hint);
    if (found == nullptr)
      return nullptr;
    if (tenant_key == "common" || tenant_key == "organizations")
      return found;
    auto t = find_tenant(tenant_key);
    return t != nullptr && t->id == found->tenant_id ? found : nullptr;
  }

  /// What a browser gets from the sign-in and admin consent endpoints when
  /// no login_hint names the person: a page to pick a person of the tenant
  /// (administrators only for `admins_only`), whose buttons come back to
  /// the same endpoint with every parameter and the chosen login_hint.
  /// Programs name the person and never see it. Call with mtx held.
  response pick_person_page(const std::string& tenant_key,
                            const http::query_params& q,
                            const std::string& path, bool admins_only) {
    bool any_tenant = tenant_key == "common" || tenant_key == "organizations";
    auto t = any_tenant ? nullptr : find_tenant(tenant_key);
    std::vector<const user*> people;
    for (auto& [id, u] : dir.users)
      if ((any_tenant || (t != nullptr && u.tenant_id == t->id))
          && (!admins_only || u.is_admin))
        people.push_back(&u);
    std::sort(people.begin(), people.end(), [](const user* a, const user* b) {
      return a->user_principal_name < b->user_principal_name;
    });
    std::string body
        = "<form method=\"get\" action=\"" + html_escape(path) + "\">";
    for (auto& [k, v] : q)
      if (k != "login_hint")
        body += "<input type=\"hidden\" name=\"" + html_escape(k)
                + "\" value=\"" + html_escape(v) + "\">";
    for (auto* u : people)
      body += "<p><button type=\"submit\" name=\"login_hint\" value=\""
              + html_escape(u->user_principal_name) + "\">"
              + html_escape(u->display_name) + " ("
              + html_escape(u->user_principal_name) + ")</button></p>";
    if (people.empty())
      body += admins_only ? "<p>This tenant has no administrator.</p>"
                          : "<p>This tenant has nobody to sign in as.</p>";
    body += "</form>";
    response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string{"<!doctype html><html lang=\"en\"><head><meta "
                         "charset=\"utf-8\"><title>graph-emulator: "}
             + (admins_only ? "grant admin consent" : "sign in")
             + "</title></head><body><h1>"
             + (admins_only ? "Grant admin consent as" : "Sign in as") + "</h1>"
             + body + "</body></html>";
    r.headers.emplace_back("Cache-Control", "no-store");
    // A browser holds a form's submission to form-action through every
    // redirect it answers with, and the endpoint redirects to the client's
    // redirect_uri: its origin is allowed too (only when it is a plain
    // http(s) origin, so nothing from the query can widen the policy).
    std::string form_action = "'self'";
    if (auto* ru = http::find_param(q, "redirect_uri"))
      if (auto origin = plain_origin(*ru); !origin.empty())
        form_action += " " + origin;
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'none'; form-action " + form_action
                               + "; frame-ancestors 'none'");
    return r;
  }

  /// The origin of an http(s) URL as split_url reads it, when its host has
  /// only letters, digits, '.', '-' and ':' (IPv6); "" for anything else.
  static std::string plain_origin(const std::string& url) {
    bool secure = false;
    std::string host, target;
    uint16_t port = 0;
    if (!split_url(url, secure, host, port, target) || host.empty())
      return {};
    for (char c : host)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'
            || c == ':'))
        return {};
    std::string origin = secure ? "https://" : "http://";
    origin += host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port != (secure ? 443 : 80))
      origin += ":" + std::to_string(port);
    return origin;
  }

  /// The "users" of a seeding request, checked (call with mtx held): each
  /// needs a userPrincipalName with '@'; ids and UPNs (case-insensitively)
  /// are unique in the whole directory, the request's users included.
  /// Fills `refused` (400 or 409) and returns false otherwise.
  bool read_new_users(const request& req, object& o,
                      const std::string& tenant_id, std::vector<user>& out,
                      response& refused) {
    std::set<std::string> new_ids, new_upns; // this request's users
    simdjson::dom::array arr;
    if (o["users"].get_array().get(arr))
      return true;
    std::string_view sv;
    for (element ue : arr) {
      user u;
      u.tenant_id = tenant_id;
      u.id = ue["id"].get_string().get(sv) ? new_guid() : std::string{sv};
      if (ue["userPrincipalName"].get_string().get(sv)
          || sv.find('@') == std::string_view::npos) {
        refused = graph_error(req, 400, "BadRequest",
                              "each user needs a userPrincipalName", now());
        return false;
      }
      u.user_principal_name = std::string{sv};
      u.display_name = ue["displayName"].get_string().get(sv)
                           ? u.user_principal_name
                           : std::string{sv};
      if (!ue["mail"].get_string().get(sv))
        u.mail = std::string{sv};
      bool b;
      if (!ue["isAdmin"].get_bool().get(b))
        u.is_admin = b;
      if (!ue["hasMailbox"].get_bool().get(b))
        u.has_mailbox = b;
      auto upn = ascii_lower(u.user_principal_name);
      bool taken = dir.users.count(u.id) != 0 || dir.user_by_upn.count(upn) != 0
                   || !new_ids.insert(u.id).second
                   || !new_upns.insert(upn).second;
      if (taken) {
        refused = graph_error(req, 409, "Conflict",
                              "a user with this id or userPrincipalName "
                              "already exists",
                              now());
        return false;
      }
      out.push_back(u);
    }
    return true;
  }

  /// Adds checked users to their tenant, the directory and its UPN index,
  /// and writes them as "users":[...] (call with mtx held).
  void add_users(json::writer& w, tenant& t, const std::vector<user>& users) {
    w.key("users").begin_array();
    for (auto& u : users) {
      t.user_ids.push_back(u.id);
      w.begin_object().key("id").value(u.id);
      w.key("userPrincipalName").value(u.user_principal_name);
      w.key("isAdmin").value(u.is_admin);
      w.key("hasMailbox").value(u.has_mailbox);
      w.end_object();
      dir.user_by_upn[ascii_lower(u.user_principal_name)] = u.id;
      dir.users[u.id] = u;
    }
    w.end_array();
  }

  /// Removes a user with what is theirs (call with mtx held): the UPN
  /// index entry, their place in the tenant's list, their mailbox, their
  /// subscriptions (subscriptionRemoved) and their calendars' delta chains.
  /// Sign-in codes issued to them are refused when redeemed.
  void delete_user(const user& gone) {
    auto id = gone.id; // `gone` is erased below
    auto mine = dir.subscriptions_by_user.find(id);
    if (mine != dir.subscriptions_by_user.end()) {
      std::vector<std::string> ids(mine->second.begin(), mine->second.end());
      for (auto& sid : ids) {
        auto i = dir.subscriptions.find(sid);
        if (i != dir.subscriptions.end())
          remove_subscription(i);
      }
    }
    for (auto c = dir.calendar_chains.lower_bound({id, std::string{}});
         c != dir.calendar_chains.end() && c->first.first == id;) {
      for (auto& ch : c->second) {
        auto tk = dir.chain_tokens.find(ch);
        if (tk != dir.chain_tokens.end())
          dir.delta_tokens.erase(tk->second);
        auto rd = dir.chain_rounds.find(ch);
        if (rd != dir.chain_rounds.end())
          dir.delta_pages.erase(rd->second);
        dir.chain_tokens.erase(ch);
        dir.chain_rounds.erase(ch);
        dir.delta_chains.erase(ch);
      }
      c = dir.calendar_chains.erase(c);
    }
    dir.mailboxes.erase(id);
    auto t = dir.tenants.find(gone.tenant_id);
    if (t != dir.tenants.end()) {
      auto& ids = t->second.user_ids;
      ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
    }
    dir.user_by_upn.erase(ascii_lower(gone.user_principal_name));
    dir.users.erase(id);
  }

  void issue_access_token(const std::string& client_id,
                          const std::string& tenant_id, std::string& token,
                          int64_t& lifetime) {
    token = "eyJ0eXAiOiJKV1Qi." + crypto::random_token(48);
    lifetime = cfg.token_lifetime.count();
    dir.tokens[token]
        = access_token{client_id, tenant_id, now() + lifetime * 1000};
  }

  /// The authorization_code grant: access token plus a signed id_token.
  void redeem_code(const request& req, const std::string& tenant_key,
                   const http::query_params& form, const responder_ptr& r) {
    auto param = [&](const char* n) {
      auto v = http::find_param(form, n);
      return v == nullptr ? std::string{} : *v;
    };
    std::lock_guard<std::mutex> guard{mtx};
    ++dir.code_redemptions;
    auto a = dir.apps.find(param("client_id"));
    if (a == dir.apps.end())
      return r->reply(oauth_error(400, "unauthorized_client", 700016,
                                  "Application with identifier '"
                                      + param("client_id") + "' was not found.",
                                  now()));
    if (!crypto::equal_secret(param("client_secret"), a->second.client_secret))
      return r->reply(oauth_error(401, "invalid_client", 7000215,
                                  "Invalid client secret provided.", now()));
    auto c = dir.codes.find(param("code"));
    if (c == dir.codes.end() || c->second.expires_ms <= now()
        || c->second.client_id != a->first)
      return r->reply(oauth_error(400, "invalid_grant", 70008,
                                  "The provided authorization code or "
                                  "refresh token has expired due to "
                                  "inactivity, or was already redeemed.",
                                  now()));
    auto code = c->second;
    dir.codes.erase(c); // single use
    if (code.redirect_uri != param("redirect_uri"))
      return r->reply(oauth_error(400, "invalid_grant", 50148,
                                  "The redirect_uri does not match the one "
                                  "of the authorization request.",
                                  now()));
    auto found = dir.users.find(code.user_id);
    if (found == dir.users.end()) // the person left since signing in
      return r->reply(oauth_error(400, "invalid_grant", 50034,
                                  "The user account does not exist in this "
                                  "directory.",
                                  now()));
    auto& u = found->second;
    if (tenant_key != "common" && tenant_key != "organizations") {
      auto t = find_tenant(tenant_key);
      if (t == nullptr || t->id != u.tenant_id)
        return r->reply(oauth_error(
            400, "invalid_grant", 50020,
            "The user is not in tenant '" + tenant_key + "'.", now()));
    }
    std::string token;
    int64_t lifetime = 0;
    issue_access_token(a->first, u.tenant_id, token, lifetime);
    auto iat = now() / 1000;
    json::writer claims;
    claims.begin_object();
    claims.key("aud").value(a->first);
    claims.key("iss").value(base_url(req) + "/" + u.tenant_id + "/v2.0");
    claims.key("iat").value(iat);
    claims.key("nbf").value(iat);
    claims.key("exp").value(iat + lifetime);
    claims.key("name").value(u.display_name);
    claims.key("oid").value(u.id);
    claims.key("preferred_username").value(u.user_principal_name);
    claims.key("email").value(u.mail.empty() ? u.user_principal_name : u.mail);
    claims.key("sub").value(crypto::sha256_hex(u.id + a->first).substr(0, 43));
    claims.key("tid").value(u.tenant_id);
    claims.key("ver").value("2.0");
    if (!code.nonce.empty())
      claims.key("nonce").value(code.nonce);
    if (u.is_admin)
      claims.key("wids").begin_array().value(global_admin_role).end_array();
    claims.end_object();
    json::writer w;
    w.begin_object().key("token_type").value("Bearer");
    w.key("scope").value("openid profile email");
    w.key("expires_in").value(lifetime);
    w.key("ext_expires_in").value(lifetime);
    w.key("access_token").value(token);
    w.key("id_token").value(signer.sign(claims.str()));
    w.end_object();
    r->reply(json_response(200, w.take()));
  }

  // -- subscriptions and their indexes (call with mtx held): every
  // insert, erase and renewal goes through these three.

  void add_subscription(const subscription& s) {
    dir.subscriptions[s.id] = s;
    dir.subscriptions_by_user[s.user_id].insert(s.id);
    dir.subscriptions_by_expiry.emplace(s.expires_ms, s.id);
  }

  std::map<std::string, subscription>::iterator
  erase_subscription(std::map<std::string, subscription>::iterator i) {
    auto& s = i->second;
    dir.subscriptions_by_expiry.erase({s.expires_ms, s.id});
    auto mine = dir.subscriptions_by_user.find(s.user_id);
    if (mine != dir.subscriptions_by_user.end()) {
      mine->second.erase(s.id);
      if (mine->second.empty())
        dir.subscriptions_by_user.erase(mine);
    }
    return dir.subscriptions.erase(i);
  }

  void renew_subscription(subscription& s, int64_t expires_ms) {
    dir.subscriptions_by_expiry.erase({s.expires_ms, s.id});
    s.expires_ms = expires_ms;
    dir.subscriptions_by_expiry.emplace(s.expires_ms, s.id);
  }

  /// Drops subscriptions past their expiration (Graph deletes them
  /// quietly), earliest first: only those that expired are visited.
  void expire_subscriptions() {
    auto t = now();
    auto& by_expiry = dir.subscriptions_by_expiry;
    while (!by_expiry.empty() && by_expiry.begin()->first <= t) {
      auto i = dir.subscriptions.find(by_expiry.begin()->second);
      if (i == dir.subscriptions.end())
        by_expiry.erase(by_expiry.begin()); // not reached: kept in step
      else
        erase_subscription(i);
    }
  }

  std::string subscription_json(const request& req, const subscription& s) {
    json::writer w;
    w.begin_object();
    w.key("@odata.context")
        .value(base_url(req) + "/v1.0/$metadata#subscriptions/$entity");
    w.key("id").value(s.id);
    w.key("resource").value(s.resource);
    w.key("applicationId").value(s.client_id);
    w.key("changeType").value(s.change_types);
    w.key("clientState");
    if (s.has_client_state)
      w.value(s.client_state);
    else
      w.null();
    w.key("notificationUrl").value(s.notification_url);
    w.key("lifecycleNotificationUrl");
    if (s.lifecycle_url.empty())
      w.null();
    else
      w.value(s.lifecycle_url);
    w.key("expirationDateTime").value(format_rfc3339_ms(s.expires_ms));
    w.key("creatorId").value(s.client_id);
    w.key("includeResourceData").value(false);
    w.key("latestSupportedTlsVersion").value("v1_2");
    w.end_object();
    return w.take();
  }

  /// Appends a write to the calendar's change log (call with mtx held).
  /// The log and the deleted series only serve delta rounds that started
  /// before a write; whenever the log has doubled since it was last
  /// compacted, what every live delta token of the calendar has already
  /// seen is dropped, so memory follows the oldest live token, not the
  /// calendar's history.
  void record_change(const user& u, calendar& c, const std::string& event_id) {
    c.log.emplace_back(++c.seq, event_id);
    // Below the floor there is nothing worth compacting (and a compaction
    // walks every delta token of the directory).
    if (c.log.size() < std::max(c.compact_at, cfg.change_log_floor))
      return;
    auto seen = c.seq; // no live token: no round needs any of the log
    // This calendar's chains only: each has at most one live token and
    // one live round (the newest), and a chain with neither is over.
    auto chains = dir.calendar_chains.find({u.id, c.id});
    if (chains != dir.calendar_chains.end()) {
      for (auto ch = chains->second.begin(); ch != chains->second.end();) {
        bool live = false;
        auto tk = dir.chain_tokens.find(*ch);
        if (tk != dir.chain_tokens.end()) {
          auto t = dir.delta_tokens.find(tk->second);
          if (t != dir.delta_tokens.end()) {
            seen = std::min(seen, t->second.seq);
            live = true;
          }
        }
        auto rd = dir.chain_rounds.find(*ch);
        if (rd != dir.chain_rounds.end()) {
          auto page = dir.delta_pages.find(rd->second);
          if (page != dir.delta_pages.end()) {
            seen = std::min(seen, page->second.next.seq);
            live = true;
          }
        }
        if (live) {
          ++ch;
          continue;
        }
        dir.delta_chains.erase(*ch);
        dir.chain_tokens.erase(*ch);
        dir.chain_rounds.erase(*ch);
        ch = chains->second.erase(ch);
      }
      if (chains->second.empty())
        dir.calendar_chains.erase(chains);
    }
    c.log.erase(
        std::remove_if(c.log.begin(), c.log.end(),
                       [&](const auto& entry) { return entry.first <= seen; }),
        c.log.end());
    std::set<std::string> logged;
    for (auto& entry : c.log)
      logged.insert(entry.second);
    for (auto i = c.deleted_series.begin(); i != c.deleted_series.end();)
      i = logged.count(i->first) ? std::next(i) : c.deleted_series.erase(i);
    for (auto i = c.changed_series.begin(); i != c.changed_series.end();)
      i = logged.count(i->first) ? std::next(i) : c.changed_series.erase(i);
    c.compact_at = std::max(cfg.change_log_floor, 2 * c.log.size());
  }

  /// Queues a lifecycle notification for a subscription (call with mtx
  /// held); a subscription without a lifecycleNotificationUrl gets none.
  void notify_lifecycle(const subscription& s, std::string_view event_name) {
    if (s.lifecycle_url.empty())
      return;
    json::writer w;
    w.begin_object();
    w.key("subscriptionId").value(s.id);
    w.key("subscriptionExpirationDateTime")
        .value(format_rfc3339_ms(s.expires_ms));
    w.key("tenantId").value(s.tenant_id);
    w.key("clientState");
    if (s.has_client_state)
      w.value(s.client_state);
    else
      w.null();
    w.key("lifecycleEvent").value(event_name);
    w.end_object();
    notifications.enqueue(s.lifecycle_url, w.take());
  }

  /// Ends a subscription as Graph does on its own initiative: a
  /// subscriptionRemoved lifecycle notification, then it is gone.
  std::map<std::string, subscription>::iterator
  remove_subscription(std::map<std::string, subscription>::iterator i) {
    notify_lifecycle(i->second, "subscriptionRemoved");
    return erase_subscription(i);
  }

  /// Deletes a calendar with its events; subscriptions on it are removed
  /// (call with mtx held; `c` must not be the default calendar).
  void delete_calendar(const user& u, mailbox& mb, const calendar& c) {
    for (auto& id : c.event_ids)
      mb.events.erase(id);
    // Only this user's subscriptions (a copy: removing edits the index).
    auto mine = dir.subscriptions_by_user.find(u.id);
    std::vector<std::string> ids;
    if (mine != dir.subscriptions_by_user.end())
      ids.assign(mine->second.begin(), mine->second.end());
    for (auto& sid : ids) {
      auto i = dir.subscriptions.find(sid);
      if (i != dir.subscriptions.end() && i->second.calendar_id == c.id)
        remove_subscription(i);
    }
    auto id = c.id;
    mb.calendars.erase(
        std::remove_if(mb.calendars.begin(), mb.calendars.end(),
                       [&](const calendar& x) { return x.id == id; }),
        mb.calendars.end());
  }

  /// Queues change notifications for every live subscription covering
  /// this calendar and change type (call with mtx held).
  void notify_change(const user& u, const calendar& c, const event& e,
                     const char* change_type) {
    // Only this user's subscriptions: a write must not walk every
    // subscription of the directory (thousands of mailboxes).
    auto mine = dir.subscriptions_by_user.find(u.id);
    if (mine == dir.subscriptions_by_user.end())
      return;
    auto t = now();
    // A copy: erasing an expired or removed subscription edits the index.
    std::vector<std::string> ids(mine->second.begin(), mine->second.end());
    for (auto& id : ids) {
      auto i = dir.subscriptions.find(id);
      if (i == dir.subscriptions.end())
        continue; // not reached: the index is kept in step
      if (i->second.expires_ms <= t) {
        erase_subscription(i); // expired: gone, as Graph forgets it
        continue;
      }
      auto& s = i->second;
      if (s.calendar_id.empty() ? !c.is_default : s.calendar_id != c.id)
        continue;
      bool wanted = false;
      for (auto& type : split_list(s.change_types))
        wanted = wanted || type == change_type;
      if (!wanted)
        continue;
      if (roll(fault.remove_subscriptions)) {
        ++struck.removed_subscriptions;
        remove_subscription(i);
        continue;
      }
      auto resource = "Users/" + u.id + "/Events/" + e.id;
      json::writer w;
      w.begin_object();
      w.key("id").value(crypto::random_token(12));
      w.key("subscriptionId").value(s.id);
      w.key("subscriptionExpirationDateTime")
          .value(format_rfc3339_ms(s.expires_ms));
      w.key("clientState");
      if (s.has_client_state)
        w.value(s.client_state);
      else
        w.null();
      w.key("changeType").value(change_type);
      w.key("resource").value(resource);
      w.key("tenantId").value(s.tenant_id);
      w.key("resourceData").begin_object();
      w.key("@odata.type").value("#Microsoft.Graph.Event");
      w.key("@odata.id").value(resource);
      w.key("@odata.etag").value("W/\"" + e.change_key + "\"");
      w.key("id").value(e.id);
      w.end_object().end_object();
      std::chrono::milliseconds delay{fault.notification_delay_ms};
      if (roll(fault.drop_notifications)) {
        ++struck.dropped_notifications;
        continue; // lost on the way, as webhooks sometimes are
      }
      auto body = w.take();
      if (roll(fault.duplicate_notifications)) {
        ++struck.duplicated_notifications;
        notifications.enqueue(s.notification_url, body, delay);
      }
      notifications.enqueue(s.notification_url, std::move(body), delay);
    }
  }

  /// Checks the bearer token; on failure fills `err` with Graph's 401.
  const access_token* check_token(const request& req, response& err) {
    auto h = req.header("authorization");
    if (h.size() < 8 || ascii_lower(h.substr(0, 7)) != "bearer ") {
      err = graph_error(req, 401, "InvalidAuthenticationToken",
                        "Access token is empty.", now());
      return nullptr;
    }
    auto i = dir.tokens.find(std::string{h.substr(7)});
    if (i == dir.tokens.end()) {
      err = graph_error(req, 401, "InvalidAuthenticationToken",
                        "IDX14100: JWT is not well formed.", now());
      return nullptr;
    }
    if (i->second.expires_ms <= now()) {
      err = graph_error(req, 401, "InvalidAuthenticationToken",
                        "Lifetime validation failed, the token is expired.",
                        now());
      return nullptr;
    }
    return &i->second;
  }

  /// A user by id or userPrincipalName, in any tenant.
  user* find_any_user(std::string_view key) {
    auto i = dir.users.find(std::string{key});
    if (i != dir.users.end())
      return &i->second;
    return find_user_by_upn(key);
  }

  /// A user of the token's tenant by id or userPrincipalName; answers and
  /// returns nullptr when there is none: 404 for an unknown user, 401 when
  /// the user belongs to another tenant (the token is not valid there).
  user* resolve_user(const request& req, const responder_ptr& r,
                     const access_token& tok, std::string_view key) {
    auto u = find_any_user(key);
    if (u == nullptr) {
      r->reply(user_not_found(req, key));
      return nullptr;
    }
    if (u->tenant_id != tok.tenant_id) {
      r->reply(graph_error(req, 401, "InvalidAuthenticationToken",
                           "Access token validation failure: the token was "
                           "issued for another tenant.",
                           now()));
      return nullptr;
    }
    return u;
  }

  response user_not_found(const request& req, std::string_view key) {
    return graph_error(req, 404, "Request_ResourceNotFound",
                       "Resource '" + std::string{key}
                           + "' does not exist or one of its queried "
                             "reference-property objects are not present.",
                       now());
  }

  /// Authenticates and resolves the user and their mailbox; answers and
  /// returns nullptr on any failure.
  mailbox* open_mailbox(const request& req, const responder_ptr& r,
                        const std::string& key, user*& u) {
    response err;
    auto tok = check_token(req, err);
    if (tok == nullptr) {
      r->reply(std::move(err));
      return nullptr;
    }
    u = resolve_user(req, r, *tok, key);
    if (u == nullptr)
      return nullptr;
    if (!within_mailbox_budget(req, r, *tok, *u))
      return nullptr;
    if (!u->has_mailbox) {
      r->reply(graph_error(req, 404, "MailboxNotEnabledForRESTAPI",
                           "The mailbox is either inactive, soft-deleted, or "
                           "is hosted on-premise.",
                           now()));
      return nullptr;
    }
    auto& mb = dir.mailboxes[u->id];
    if (mb.calendars.empty()) {
      calendar def;
      def.id = new_item_id();
      def.name = "Calendar";
      def.change_key = new_change_key();
      def.is_default = true;
      mb.calendars.push_back(def);
    }
    return &mb;
  }

  /// Outlook limits each (app, mailbox) pair to N requests per window;
  /// beyond it, 429 with Retry-After until the oldest request ages out.
  bool within_mailbox_budget(const request& req, const responder_ptr& r,
                             const access_token& tok, const user& u) {
    auto& times = dir.usage[{tok.client_id, u.id}];
    auto window_ms = static_cast<int64_t>(cfg.mailbox_window.count()) * 1000;
    auto t = now();
    while (!times.empty() && times.front() <= t - window_ms)
      times.pop_front();
    auto throttle = [&](int64_t wait_s) {
      auto res = graph_error(req, 429, "ApplicationThrottled",
                             "Application is over its MailboxConcurrency "
                             "limit.",
                             t);
      res.headers.emplace_back("Retry-After",
                               std::to_string(std::max<int64_t>(1, wait_s)));
      r->reply(std::move(res));
      return false;
    };
    if (times.size() >= cfg.mailbox_requests_per_window)
      return throttle((times.front() + window_ms - t + 999) / 1000);
    // At most N requests of one app on one mailbox are in flight; a request
    // stays in flight until its (possibly delayed) answer is sent.
    mailbox_key key{tok.client_id, u.id};
    if (current_slot != nullptr) {
      std::lock_guard<std::mutex> guard{inflight_mtx};
      if (inflight[key] >= cfg.mailbox_concurrency)
        return throttle(1);
      ++inflight[key];
      current_slot->hold(key);
    }
    times.push_back(t);
    return true;
  }

  /// The named calendar, or the default one when `id` is null; answers
  /// 404 ErrorItemNotFound itself and returns nullptr when there is none.
  calendar* open_calendar(const request& req, const responder_ptr& r,
                          mailbox& mb, const std::string* id) {
    auto c = id ? find_calendar(mb, *id) : &mb.calendars[0];
    if (c == nullptr)
      r->reply(item_not_found(req));
    return c;
  }

  calendar* find_calendar(mailbox& mb, std::string_view id) {
    for (auto& c : mb.calendars)
      if (c.id == id)
        return &c;
    return nullptr;
  }

  response item_not_found(const request& req) {
    return graph_error(req, 404, "ErrorItemNotFound",
                       "The specified object was not found in the store.",
                       now());
  }

  // -- rendering
  // -------------------------------------------------------------------

  void write_user(json::writer& w, const user& u,
                  const std::vector<std::string>& select) {
    auto want = [&](std::string_view p) {
      if (select.empty())
        return p != "accountEnabled";
      for (auto& s : select)
        if (s == p)
          return true;
      return false;
    };
    w.begin_object();
    if (want("businessPhones"))
      w.key("businessPhones").begin_array().end_array();
    if (want("displayName"))
      w.key("displayName").value(u.display_name);
    for (const char* nul : {"givenName", "jobTitle", "mobilePhone",
                            "officeLocation", "preferredLanguage", "surname"})
      if (want(nul))
        w.key(nul).null();
    if (want("mail")) {
      w.key("mail");
      if (u.mail.empty())
        w.null();
      else
        w.value(u.mail);
    }
    if (want("userPrincipalName"))
      w.key("userPrincipalName").value(u.user_principal_name);
    if (want("accountEnabled"))
      w.key("accountEnabled").value(true);
    if (want("id"))
      w.key("id").value(u.id);
    w.end_object();
  }

  void write_calendar(json::writer& w, const calendar& c, const user& owner) {
    w.begin_object();
    w.key("id").value(c.id);
    w.key("name").value(c.name);
    w.key("color").value("auto");
    w.key("hexColor").value("");
    w.key("isDefaultCalendar").value(c.is_default);
    w.key("changeKey").value(c.change_key);
    w.key("canShare").value(true);
    w.key("canViewPrivateItems").value(true);
    w.key("canEdit").value(true);
    w.key("isRemovable").value(!c.is_default);
    w.key("isTallyingResponses").value(true);
    w.key("allowedOnlineMeetingProviders")
        .begin_array()
        .value("teamsForBusiness")
        .end_array();
    w.key("defaultOnlineMeetingProvider").value("teamsForBusiness");
    w.key("owner").begin_object();
    w.key("name").value(owner.display_name);
    w.key("address").value(owner.mail.empty() ? owner.user_principal_name
                                              : owner.mail);
    w.end_object();
    w.end_object();
  }

  /// Renders an event; start/end in `zone` (UTC unless a read asked for
  /// another with Prefer: outlook.timezone).
  void write_event(json::writer& w, const event& e, const user& owner,
                   const std::vector<std::string>& expand_props,
                   const std::string& zone = {}) {
    const std::string& out_zone = zone.empty() ? utc_name : zone;
    w.begin_object();
    w.key("@odata.etag").value("W/\"" + e.change_key + "\"");
    w.key("id").value(e.id);
    w.key("createdDateTime").value(format_rfc3339_ms(e.created_ms));
    w.key("lastModifiedDateTime").value(format_rfc3339_ms(e.modified_ms));
    w.key("changeKey").value(e.change_key);
    w.key("categories").begin_array().end_array();
    if (!e.transaction_id.empty())
      w.key("transactionId").value(e.transaction_id);
    w.key("originalStartTimeZone").value(e.start_time_zone);
    w.key("originalEndTimeZone").value(e.end_time_zone);
    w.key("iCalUId").value(e.ical_uid);
    w.key("reminderMinutesBeforeStart").value(15);
    w.key("isReminderOn").value(true);
    w.key("hasAttachments").value(false);
    w.key("subject").value(e.subject);
    w.key("bodyPreview").value(e.body_content.substr(0, 255));
    w.key("importance").value("normal");
    w.key("sensitivity").value("normal");
    w.key("isAllDay").value(e.is_all_day);
    w.key("isCancelled").value(false);
    w.key("isOrganizer").value(true);
    w.key("responseRequested").value(true);
    w.key("seriesMasterId");
    if (e.series_master_id.empty())
      w.null();
    else
      w.value(e.series_master_id);
    if (!e.series_master_id.empty())
      w.key("originalStart").value(format_rfc3339(e.original_start_ms));
    w.key("showAs").value("busy");
    w.key("type").value(e.recurrence.active           ? "seriesMaster"
                        : e.exception                 ? "exception"
                        : !e.series_master_id.empty() ? "occurrence"
                                                      : "singleInstance");
    w.key("recurrence");
    if (e.recurrence.active)
      w.raw(e.recurrence.json);
    else
      w.null();
    w.key("body").begin_object();
    w.key("contentType").value(e.body_content_type);
    w.key("content").value(e.body_content);
    w.end_object();
    for (auto [name, ms] :
         {std::pair{"start", e.start_ms}, {"end", e.end_ms}}) {
      int64_t local = ms;
      utc_to_local(out_zone, ms, local);
      w.key(name).begin_object();
      w.key("dateTime").value(graph_date_time(local));
      w.key("timeZone").value(out_zone);
      w.end_object();
    }
    w.key("location").begin_object();
    w.key("displayName").value(e.location);
    w.key("locationType").value("default");
    w.end_object();
    w.key("attendees").raw(e.attendees_json);
    w.key("organizer").begin_object().key("emailAddress").begin_object();
    w.key("name").value(owner.display_name);
    w.key("address").value(owner.mail.empty() ? owner.user_principal_name
                                              : owner.mail);
    w.end_object().end_object();
    if (!expand_props.empty()) {
      w.key("singleValueExtendedProperties").begin_array();
      for (auto& id : expand_props) {
        auto p = e.extended_properties.find(id);
        if (p == e.extended_properties.end())
          continue;
        w.begin_object().key("id").value(p->first);
        w.key("value").value(p->second).end_object();
      }
      w.end_array();
    }
    w.end_object();
  }

  // -- event bodies
  // --------------------------------------------------------------------

  /// Applies a create/PATCH body to an event. `create` demands start/end.
  bool apply_event_body(std::string_view body, event& e, bool create,
                        body_error& err) {
    object o;
    if (!parse_body(body, o, err))
      return false;
    bool have_start = false, have_end = false;
    for (auto kv : o) {
      auto k = kv.key;
      if (k == "subject") {
        if (!read_string(kv.value, e.subject)) {
          err.message = "'subject' must be a string";
          return false;
        }
      } else if (k == "body") {
        object b;
        if (kv.value.get_object().get(b)) {
          err.message = "'body' must be an itemBody";
          return false;
        }
        std::string_view ct, content;
        if (!b["contentType"].get_string().get(ct))
          e.body_content_type = ascii_lower(ct);
        if (!b["content"].get_string().get(content))
          e.body_content.assign(content);
      } else if (k == "start") {
        if (!read_date_time_zone(kv.value, "start", e.start_ms,
                                 e.start_time_zone, err))
          return false;
        have_start = true;
      } else if (k == "end") {
        if (!read_date_time_zone(kv.value, "end", e.end_ms, e.end_time_zone,
                                 err))
          return false;
        have_end = true;
      } else if (k == "isAllDay") {
        if (kv.value.get_bool().get(e.is_all_day)) {
          err.message = "'isAllDay' must be a boolean";
          return false;
        }
      } else if (k == "location") {
        object l;
        std::string_view name;
        if (kv.value.get_object().get(l)) {
          err.message = "'location' must be a location";
          return false;
        }
        if (!l["displayName"].get_string().get(name))
          e.location.assign(name);
      } else if (k == "attendees") {
        simdjson::dom::array a;
        if (kv.value.get_array().get(a)) {
          err.message = "'attendees' must be an array";
          return false;
        }
        e.attendees_json = to_json_text(kv.value);
      } else if (k == "transactionId") {
        if (!create) {
          err.message = "transactionId cannot be changed after creation";
          return false;
        }
        if (!read_string(kv.value, e.transaction_id)) {
          err.message = "'transactionId' must be a string";
          return false;
        }
      } else if (k == "recurrence") {
        if (kv.value.is_null()) {
          e.recurrence = recurrence_rule{};
        } else if (!read_recurrence(kv.value, e.recurrence, err)) {
          return false;
        }
      } else if (k == "singleValueExtendedProperties") {
        simdjson::dom::array a;
        if (kv.value.get_array().get(a)) {
          err.message = "'singleValueExtendedProperties' must be an array";
          return false;
        }
        for (element p : a) {
          std::string_view id, value;
          if (p["id"].get_string().get(id)
              || p["value"].get_string().get(value)) {
            err.message = "each extended property needs 'id' and 'value'";
            return false;
          }
          e.extended_properties[std::string{id}] = std::string{value};
        }
      }
      // Other event properties are accepted and not stored, as far as the
      // emulator is concerned they do not exist.
    }
    if (create && (!have_start || !have_end)) {
      err.code = "ErrorInvalidRequest";
      err.message = "Your request can't be completed. The start and end "
                    "times are required.";
      return false;
    }
    if (e.end_ms < e.start_ms) {
      err.code = "ErrorInvalidRequest";
      err.message = "Your request can't be completed. The end time must be "
                    "after the start time.";
      return false;
    }
    int64_t local_start = e.start_ms, local_end = e.end_ms;
    utc_to_local(e.start_time_zone, e.start_ms, local_start);
    utc_to_local(e.end_time_zone, e.end_ms, local_end);
    if (e.is_all_day
        && (e.start_time_zone != e.end_time_zone
            || local_start % 86'400'000 != 0 || local_end % 86'400'000 != 0)) {
      err.code = "ErrorInvalidRequest";
      err.message = "Your request can't be completed. When the event is an "
                    "all-day event, the start and end time must be midnight "
                    "and in the same time zone.";
      return false;
    }
    return true;
  }

  /// `$expand=singleValueExtendedProperties($filter=id eq '…')` → ids.
  static std::vector<std::string> expanded_props(const http::query_params& q) {
    std::vector<std::string> out;
    auto v = http::find_param(q, "$expand");
    if (v == nullptr)
      return out;
    std::string_view s{*v};
    size_t pos = 0;
    while ((pos = s.find("id eq '", pos)) != std::string_view::npos) {
      pos += 7;
      auto end = s.find('\'', pos);
      if (end == std::string_view::npos)
        break;
      out.emplace_back(s.substr(pos, end - pos));
      pos = end + 1;
    }
    return out;
  }

  /// `$filter=singleValueExtendedProperties/Any(ep: ep/id eq 'I' and
  /// ep/value eq 'V')` → (I, V); false when there is no such filter.
  static bool extended_filter(const http::query_params& q, std::string& id,
                              std::string& value) {
    auto v = http::find_param(q, "$filter");
    if (v == nullptr)
      return false;
    std::string_view s{*v};
    auto grab = [&](std::string_view marker, std::string& out) {
      auto p = s.find(marker);
      if (p == std::string_view::npos)
        return false;
      p += marker.size();
      auto end = s.find('\'', p);
      if (end == std::string_view::npos)
        return false;
      out.assign(s.substr(p, end - p));
      return true;
    };
    return grab("/id eq '", id) && grab("/value eq '", value);
  }
};

// -- routes
// ------------------------------------------------------------------------------

void service::impl::install_routes() {
  auto self = this;

  // ---- control API
  // --------------------------------------------------------------

  routes.add(
      "POST", "/_emulator/tenants",
      [self](request& req, const http::path_params&, responder_ptr r) {
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return r->reply(
              graph_error(req, 400, "BadRequest", err.message, self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        tenant t;
        std::string_view sv;
        t.id = o["id"].get_string().get(sv) ? new_guid() : std::string{sv};
        if (o["domain"].get_string().get(sv) || sv.empty())
          return r->reply(graph_error(req, 400, "BadRequest",
                                      "'domain' is required", self->now()));
        t.domain = ascii_lower(sv);
        if (self->find_tenant(t.id) || self->find_tenant(t.domain))
          return r->reply(graph_error(req, 409, "Conflict",
                                      "tenant already exists", self->now()));
        std::vector<user> users;
        response refused;
        if (!self->read_new_users(req, o, t.id, users, refused))
          return r->reply(std::move(refused));
        self->dir.tenant_by_domain[t.domain] = t.id;
        auto& added = self->dir.tenants[t.id] = t;
        json::writer w;
        w.begin_object().key("id").value(t.id);
        w.key("domain").value(t.domain);
        self->add_users(w, added, users);
        w.end_object();
        r->reply(json_response(201, w.take()));
      });

  // More people join an existing tenant (by id or domain); the same
  // fields and the same uniqueness as when seeding the tenant.
  routes.add(
      "POST", "/_emulator/tenants/{tenant}/users",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return r->reply(
              graph_error(req, 400, "BadRequest", err.message, self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        auto t = self->find_tenant(pp[0]);
        if (t == nullptr)
          return r->reply(graph_error(
              req, 404, "NotFound", "no tenant '" + pp[0] + "'", self->now()));
        std::vector<user> users;
        response refused;
        if (!self->read_new_users(req, o, t->id, users, refused))
          return r->reply(std::move(refused));
        json::writer w;
        w.begin_object();
        self->add_users(w, *t, users);
        w.end_object();
        r->reply(json_response(201, w.take()));
      });

  // A person leaves the organization: the user, their mailbox and the
  // subscriptions on it (subscriptionRemoved) are gone; their UPN is free.
  routes.add(
      "DELETE", "/_emulator/users/{user}",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        auto u = self->find_any_user(pp[0]);
        if (u == nullptr)
          return r->reply(self->user_not_found(req, pp[0]));
        self->delete_user(*u);
        response res;
        res.status = 204;
        r->reply(std::move(res));
      });

  routes.add(
      "POST", "/_emulator/apps",
      [self](request& req, const http::path_params&, responder_ptr r) {
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return r->reply(
              graph_error(req, 400, "BadRequest", err.message, self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        app a;
        std::string_view sv;
        if (o["client_id"].get_string().get(sv) || sv.empty())
          return r->reply(graph_error(req, 400, "BadRequest",
                                      "'client_id' is required", self->now()));
        a.client_id = std::string{sv};
        if (o["client_secret"].get_string().get(sv) || sv.empty())
          return r->reply(graph_error(req, 400, "BadRequest",
                                      "'client_secret' is required",
                                      self->now()));
        a.client_secret = std::string{sv};
        simdjson::dom::array arr;
        if (!o["tenants"].get_array().get(arr))
          for (element te : arr) {
            if (te.get_string().get(sv))
              continue;
            auto t = self->find_tenant(sv);
            if (t == nullptr)
              return r->reply(graph_error(
                  req, 400, "BadRequest",
                  "unknown tenant '" + std::string{sv} + "'", self->now()));
            a.consented_tenants.insert(t->id);
          }
        self->dir.apps[a.client_id] = a;
        json::writer w;
        w.begin_object().key("client_id").value(a.client_id).end_object();
        r->reply(json_response(201, w.take()));
      });

  routes.add("GET", "/_emulator/mail",
             [self](request& req, const http::path_params&, responder_ptr r) {
               http::query_params q;
               http::parse_query(req.query, q);
               auto key = http::find_param(q, "user");
               if (key == nullptr)
                 return r->reply(graph_error(req, 400, "BadRequest",
                                             "give ?user=ID or UPN",
                                             self->now()));
               std::lock_guard<std::mutex> guard{self->mtx};
               const user* found = self->find_any_user(*key);
               if (found == nullptr)
                 return r->reply(self->user_not_found(req, *key));
               json::writer w;
               w.begin_object().key("value").begin_array();
               auto mb = self->dir.mailboxes.find(found->id);
               if (mb != self->dir.mailboxes.end())
                 for (auto& m : mb->second.outbox) {
                   w.begin_object();
                   w.key("from").value(found->user_principal_name);
                   w.key("sentDateTime").value(format_rfc3339(m.sent_ms));
                   w.key("saveToSentItems").value(m.save_to_sent_items);
                   w.key("message").raw(m.message_json);
                   w.end_object();
                 }
               w.end_array().end_object();
               r->reply(json_response(200, w.take()));
             });

  routes.add(
      "GET", "/_emulator/state",
      [self](request&, const http::path_params&, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        json::writer w;
        w.begin_object().key("tenants").begin_array();
        for (auto& [id, t] : self->dir.tenants) {
          w.begin_object().key("id").value(id);
          w.key("domain").value(t.domain);
          w.key("users").value(static_cast<uint64_t>(t.user_ids.size()));
          w.end_object();
        }
        w.end_array().key("apps").begin_array();
        for (auto& [id, a] : self->dir.apps) {
          w.begin_object().key("client_id").value(id);
          w.key("tenants").begin_array();
          for (auto& t : a.consented_tenants)
            w.value(t);
          w.end_array().end_object();
        }
        w.end_array();
        uint64_t events = 0, calendars = 0, mails = 0, log = 0;
        for (auto& [uid, mb] : self->dir.mailboxes) {
          events += mb.events.size();
          calendars += mb.calendars.size();
          mails += mb.outbox.size();
          for (auto& c : mb.calendars)
            log += c.log.size() + c.deleted_series.size()
                   + c.changed_series.size();
        }
        w.key("calendars").value(calendars);
        w.key("change_log_entries").value(log);
        w.key("events").value(events);
        w.key("mail").value(mails);
        w.key("tokens").value(static_cast<uint64_t>(self->dir.tokens.size()));
        w.key("code_redemptions").value(self->dir.code_redemptions);
        // The subscription indexes' entries next to the subscriptions
        // (equal while the indexes are in step) and the delta chains
        // indexed by calendar (dead ones go at compaction).
        uint64_t by_user = 0, chains = 0;
        for (auto& [uid, ids] : self->dir.subscriptions_by_user)
          by_user += ids.size();
        for (auto& [key, ids] : self->dir.calendar_chains)
          chains += ids.size();
        w.key("subscriptions")
            .value(static_cast<uint64_t>(self->dir.subscriptions.size()));
        w.key("subscriptions_by_user").value(by_user);
        w.key("subscriptions_by_expiry")
            .value(static_cast<uint64_t>(
                self->dir.subscriptions_by_expiry.size()));
        w.key("delta_chains").value(chains);
        w.end_object();
        r->reply(json_response(200, w.take()));
      });

  routes.add("POST", "/_emulator/reset",
             [self](request&, const http::path_params&, responder_ptr r) {
               std::lock_guard<std::mutex> guard{self->mtx};
               self->dir = directory{};
               self->fault = faults{};
               self->struck = fault_counts{};
               response res;
               res.status = 204;
               r->reply(std::move(res));
             });

  // Fault injection: partial updates; every rate is a share in [0, 1].
  routes.add(
      "POST", "/_emulator/faults",
      [self](request& req, const http::path_params&, responder_ptr r) {
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return r->reply(
              graph_error(req, 400, "BadRequest", err.message, self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        auto next = self->fault;
        for (auto kv : o) {
          std::string key{kv.key};
          if (key == "refuse_text" || key == "refuse_code") {
            std::string_view text;
            if (kv.value.get_string().get(text))
              return r->reply(graph_error(req, 400, "BadRequest",
                                          "'" + key + "' must be a string",
                                          self->now()));
            (key == "refuse_text" ? next.refuse_text : next.refuse_code)
                = std::string{text};
            continue;
          }
          double number = 0;
          if (kv.value.get_double().get(number)) {
            int64_t whole = 0;
            if (kv.value.get_int64().get(whole))
              return r->reply(graph_error(req, 400, "BadRequest",
                                          "'" + key + "' must be a number",
                                          self->now()));
            number = static_cast<double>(whole);
          }
          bool is_rate = key != "latency_ms" && key != "jitter_ms"
                         && key != "notification_delay_ms"
                         && key != "refuse_status";
          if (number < 0 || (is_rate && number > 1) || number > 600000)
            return r->reply(graph_error(req, 400, "BadRequest",
                                        "'" + key + "' is out of range",
                                        self->now()));
          if (key == "latency_ms")
            next.latency_ms = static_cast<int64_t>(number);
          else if (key == "jitter_ms")
            next.jitter_ms = static_cast<int64_t>(number);
          else if (key == "error_rate")
            next.error_rate = number;
          else if (key == "throttle_rate")
            next.throttle_rate = number;
          else if (key == "access_denied_rate")
            next.access_denied_rate = number;
          else if (key == "mailbox_disabled_rate")
            next.mailbox_disabled_rate = number;
          else if (key == "refuse_status" && number >= 400 && number <= 599)
            next.refuse_status = static_cast<int64_t>(number);
          else if (key == "drop_notifications")
            next.drop_notifications = number;
          else if (key == "duplicate_notifications")
            next.duplicate_notifications = number;
          else if (key == "notification_delay_ms")
            next.notification_delay_ms = static_cast<int64_t>(number);
          else if (key == "remove_subscriptions")
            next.remove_subscriptions = number;
          else
            return r->reply(graph_error(req, 400, "BadRequest",
                                        "unknown fault '" + key + "'",
                                        self->now()));
        }
        self->fault = next;
        r->reply(json_response(200, faults_json(next)));
      });

  routes.add("GET", "/_emulator/faults",
             [self](request&, const http::path_params&, responder_ptr r) {
               std::lock_guard<std::mutex> guard{self->mtx};
               r->reply(json_response(200, faults_json(self->fault)));
             });

  // What the faults did and what the notifier delivered, counted since
  // the start (faults: since the last reset).
  routes.add(
      "GET", "/_emulator/counters",
      [self](request&, const http::path_params&, responder_ptr r) {
        auto sent = self->notifications.stats();
        std::lock_guard<std::mutex> guard{self->mtx};
        auto& c = self->struck;
        json::writer w;
        w.begin_object().key("faults").begin_object();
        w.key("errors").value(c.errors);
        w.key("throttles").value(c.throttles);
        w.key("access_denied").value(c.access_denied);
        w.key("mailbox_disabled").value(c.mailbox_disabled);
        w.key("refused_events").value(c.refused_events);
        w.key("dropped_notifications").value(c.dropped_notifications);
        w.key("duplicated_notifications").value(c.duplicated_notifications);
        w.key("removed_subscriptions").value(c.removed_subscriptions);
        w.end_object().key("notifications").begin_object();
        w.key("delivered").value(sent.delivered);
        w.key("retried").value(sent.retried);
        w.key("dropped").value(sent.dropped);
        w.key("pending").value(sent.pending);
        w.end_object().end_object();
        r->reply(json_response(200, w.take()));
      });

  // ---- identity platform
  // ---------------------------------------------------------------

  routes.add(
      "POST", "/{tenant}/oauth2/v2.0/token",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        http::query_params form;
        if (!http::parse_query(req.body, form))
          return r->reply(oauth_error(400, "invalid_request", 900144,
                                      "The request body must be "
                                      "application/x-www-form-urlencoded.",
                                      self->now()));
        auto param = [&](const char* n) {
          auto v = http::find_param(form, n);
          return v == nullptr ? std::string{} : *v;
        };
        auto grant = param("grant_type");
        if (grant == "authorization_code")
          return self->redeem_code(req, pp[0], form, r);
        if (grant != "client_credentials")
          return r->reply(oauth_error(
              400, "unsupported_grant_type", 70003,
              "The app requested an unsupported grant type '" + grant + "'.",
              self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        auto t = self->find_tenant(pp[0]);
        if (t == nullptr)
          return r->reply(oauth_error(400, "invalid_request", 90002,
                                      "Tenant '" + pp[0] + "' not found.",
                                      self->now()));
        auto a = self->dir.apps.find(param("client_id"));
        if (a == self->dir.apps.end())
          return r->reply(oauth_error(
              400, "unauthorized_client", 700016,
              "Application with identifier '" + param("client_id")
                  + "' was not found in the directory '" + t->domain + "'.",
              self->now()));
        if (!crypto::equal_secret(param("client_secret"),
                                  a->second.client_secret))
          return r->reply(oauth_error(401, "invalid_client", 7000215,
                                      "Invalid client secret provided.",
                                      self->now()));
        if (a->second.consented_tenants.count(t->id) == 0)
          return r->reply(oauth_error(
              400, "unauthorized_client", 700016,
              "Application with identifier '" + param("client_id")
                  + "' was not found in the directory '" + t->domain + "'.",
              self->now()));
        std::string token;
        int64_t lifetime = 0;
        self->issue_access_token(a->first, t->id, token, lifetime);
        json::writer w;
        w.begin_object().key("token_type").value("Bearer");
        w.key("expires_in").value(static_cast<int64_t>(lifetime));
        w.key("ext_expires_in").value(static_cast<int64_t>(lifetime));
        w.key("access_token").value(token);
        w.end_object();
        r->reply(json_response(200, w.take()));
      });

  // Sign-in (authorization-code flow). login_hint names the person, and the
  // answer is at once a redirect with a code; without it, a browser picks
  // the person on a page (pick_person_page).
  routes.add(
      "GET", "/{tenant}/oauth2/v2.0/authorize",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        http::query_params q;
        if (!http::parse_query(req.query, q))
          return r->reply(oauth_error(400, "invalid_request", 900144,
                                      "Invalid query string.", self->now()));
        auto param = [&](const char* n) {
          auto v = http::find_param(q, n);
          return v == nullptr ? std::string{} : *v;
        };
        auto redirect_uri = param("redirect_uri");
        auto state = param("state");
        std::lock_guard<std::mutex> guard{self->mtx};
        auto a = self->dir.apps.find(param("client_id"));
        if (a == self->dir.apps.end())
          return r->reply(oauth_error(400, "unauthorized_client", 700016,
                                      "Application with identifier '"
                                          + param("client_id")
                                          + "' was not found.",
                                      self->now()));
        if (redirect_uri.empty())
          return r->reply(oauth_error(400, "invalid_request", 900144,
                                      "The request must contain the "
                                      "parameter 'redirect_uri'.",
                                      self->now()));
        auto fail_to = [&](const char* error, int code, std::string text) {
          r->reply(redirect(with_params(
              redirect_uri, {{"error", error},
                             {"error_description",
                              "AADSTS" + std::to_string(code) + ": " + text},
                             {"state", state}})));
        };
        if (param("response_type") != "code")
          return fail_to("unsupported_response_type", 700054,
                         "response_type must be 'code'.");
        if (http::find_param(q, "login_hint") == nullptr)
          return r->reply(self->pick_person_page(pp[0], q, req.path, false));
        auto u = self->find_sign_in_user(pp[0], param("login_hint"));
        if (u == nullptr)
          return fail_to("invalid_request", 50034,
                         "The user account '" + param("login_hint")
                             + "' does not exist in this directory.");
        auto code = crypto::random_token(48);
        self->dir.codes[code]
            = auth_code{a->first, redirect_uri, u->id, param("nonce"),
                        self->now() + code_lifetime_ms};
        r->reply(redirect(
            with_params(redirect_uri, {{"code", code},
                                       {"state", state},
                                       {"session_state", new_guid()}})));
      });

  // Admin consent: only an administrator of the tenant can grant it.
  routes.add(
      "GET", "/{tenant}/adminconsent",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        http::query_params q;
        http::parse_query(req.query, q);
        auto param = [&](const char* n) {
          auto v = http::find_param(q, n);
          return v == nullptr ? std::string{} : *v;
        };
        auto redirect_uri = param("redirect_uri");
        auto state = param("state");
        std::lock_guard<std::mutex> guard{self->mtx};
        auto a = self->dir.apps.find(param("client_id"));
        if (a == self->dir.apps.end() || redirect_uri.empty())
          return r->reply(oauth_error(
              400, "unauthorized_client", 700016,
              "Application with identifier '" + param("client_id")
                  + "' was not found, or no redirect_uri was given.",
              self->now()));
        if (http::find_param(q, "login_hint") == nullptr)
          return r->reply(self->pick_person_page(pp[0], q, req.path, true));
        auto u = self->find_sign_in_user(pp[0], param("login_hint"));
        if (u == nullptr || !u->is_admin)
          return r->reply(redirect(with_params(
              redirect_uri,
              {{"error", "access_denied"},
               {"error_description",
                "AADSTS90094: An administrator of the organization must "
                "grant permissions to this app."},
               {"state", state}})));
        a->second.consented_tenants.insert(u->tenant_id);
        r->reply(redirect(with_params(redirect_uri, {{"admin_consent", "True"},
                                                     {"tenant", u->tenant_id},
                                                     {"state", state}})));
      });

  routes.add("GET", "/{tenant}/discovery/v2.0/keys",
             [self](request&, const http::path_params&, responder_ptr r) {
               r->reply(json_response(200, self->signer.jwks()));
             });

  routes.add(
      "GET", "/{tenant}/v2.0/.well-known/openid-configuration",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        auto base = base_url(req);
        std::string t = pp[0];
        {
          std::lock_guard<std::mutex> guard{self->mtx};
          if (auto found = self->find_tenant(t))
            t = found->id;
        }
        bool multi = t == "common" || t == "organizations";
        json::writer w;
        w.begin_object();
        w.key("issuer").value(
            base + "/" + (multi ? std::string{"{tenantid}"} : t) + "/v2.0");
        w.key("authorization_endpoint")
            .value(base + "/" + pp[0] + "/oauth2/v2.0/authorize");
        w.key("token_endpoint")
            .value(base + "/" + pp[0] + "/oauth2/v2.0/token");
        w.key("jwks_uri").value(base + "/" + pp[0] + "/discovery/v2.0/keys");
        w.key("response_types_supported")
            .begin_array()
            .value("code")
            .end_array();
        w.key("id_token_signing_alg_values_supported")
            .begin_array()
            .value("RS256")
            .end_array();
        w.end_object();
        r->reply(json_response(200, w.take()));
      });

  // ---- Graph: users
  // ------------------------------------------------------------------------

  routes.add(
      "GET", "/v1.0/users",
      [self](request& req, const http::path_params&, responder_ptr r) {
        http::query_params q;
        if (!http::parse_query(req.query, q))
          return r->reply(graph_error(req, 400, "BadRequest",
                                      "Invalid query string.", self->now()));
        size_t top = default_user_page, skip = 0;
        if (auto v = http::find_param(q, "$top")) {
          char* end = nullptr;
          auto n = std::strtol(v->c_str(), &end, 10);
          if (v->empty() || *end != '\0' || n < 1 || n > 999)
            return r->reply(
                graph_error(req, 400, "Request_UnsupportedQuery",
                            "Invalid page size specified: '" + *v
                                + "'. Must be between 1 and 999 inclusive.",
                            self->now()));
          top = static_cast<size_t>(n);
        }
        if (auto v = http::find_param(q, "$skiptoken")) {
          auto n = parse_hex16(*v);
          if (!n)
            return r->reply(graph_error(req, 400, "Request_BadRequest",
                                        "Invalid skip token.", self->now()));
          skip = static_cast<size_t>(*n);
        }
        std::vector<std::string> select;
        if (!read_user_select(req, q, r, select, self->now()))
          return;
        std::lock_guard<std::mutex> guard{self->mtx};
        response err;
        auto tok = self->check_token(req, err);
        if (tok == nullptr)
          return r->reply(std::move(err));
        auto& t = self->dir.tenants[tok->tenant_id];
        auto base = base_url(req);
        json::writer w;
        w.begin_object();
        w.key("@odata.context").value(base + "/v1.0/$metadata#users");
        size_t end = std::min(t.user_ids.size(), skip + top);
        if (end < t.user_ids.size()) {
          std::string next = base + "/v1.0/users?$top=" + std::to_string(top);
          if (auto v = http::find_param(q, "$select"))
            next += "&$select=" + http::percent_encode(*v);
          next += "&$skiptoken=" + to_hex16(end);
          w.key("@odata.nextLink").value(next);
        }
        w.key("value").begin_array();
        for (size_t i = skip; i < end; ++i)
          self->write_user(w, self->dir.users[t.user_ids[i]], select);
        w.end_array().end_object();
        r->reply(json_response(200, w.take()));
      });

  routes.add(
      "GET", "/v1.0/users/{user}",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        response err;
        auto tok = self->check_token(req, err);
        if (tok == nullptr)
          return r->reply(std::move(err));
        auto u = self->resolve_user(req, r, *tok, pp[0]);
        if (u == nullptr)
          return;
        http::query_params q;
        http::parse_query(req.query, q);
        std::vector<std::string> select;
        if (!read_user_select(req, q, r, select, self->now()))
          return;
        json::writer w;
        self->write_user(w, *u, select);
        r->reply(json_response(200, w.take()));
      });

  // ---- Graph: calendars
  // ------------------------------------------------------------------------

  routes.add(
      "GET", "/v1.0/users/{user}/calendars",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        user* u = nullptr;
        auto mb = self->open_mailbox(req, r, pp[0], u);
        if (mb == nullptr)
          return;
        json::writer w;
        w.begin_object().key("value").begin_array();
        for (auto& c : mb->calendars)
          self->write_calendar(w, c, *u);
        w.end_array().end_object();
        r->reply(json_response(200, w.take()));
      });

  routes.add(
      "POST", "/v1.0/users/{user}/calendars",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return r->reply(
              graph_error(req, 400, err.code, err.message, self->now()));
        std::string_view name;
        if (o["name"].get_string().get(name) || name.empty())
          return r->reply(graph_error(req, 400, "ErrorInvalidRequest",
                                      "The calendar name is required.",
                                      self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        user* u = nullptr;
        auto mb = self->open_mailbox(req, r, pp[0], u);
        if (mb == nullptr)
          return;
        for (auto& c : mb->calendars)
          if (ascii_lower(c.name) == ascii_lower(name))
            return r->reply(
                graph_error(req, 409, "ErrorFolderExists",
                            "A folder with the specified name already exists.",
                            self->now()));
        calendar c;
        c.id = new_item_id();
        c.name = std::string{name};
        c.change_key = new_change_key();
        mb->calendars.push_back(c);
        json::writer w;
        self->write_calendar(w, c, *u);
        r->reply(json_response(201, w.take()));
      });

  routes.add(
      "GET", "/v1.0/users/{user}/calendars/{cal}",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        user* u = nullptr;
        auto mb = self->open_mailbox(req, r, pp[0], u);
        if (mb == nullptr)
          return;
        auto c = self->find_calendar(*mb, pp[1]);
        if (c == nullptr)
          return r->reply(self->item_not_found(req));
        json::writer w;
        self->write_calendar(w, *c, *u);
        r->reply(json_response(200, w.take()));
      });

  routes.add(
      "DELETE", "/v1.0/users/{user}/calendars/{cal}",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        user* u = nullptr;
        auto mb = self->open_mailbox(req, r, pp[0], u);
        if (mb == nullptr)
          return;
        auto c = self->find_calendar(*mb, pp[1]);
        if (c == nullptr)
          return r->reply(self->item_not_found(req));
        if (c->is_default)
          return r->reply(graph_error(req, 400, "ErrorCannotDeleteObject",
                                      "The default calendar cannot be deleted.",
                                      self->now()));
        self->delete_calendar(*u, *mb, *c);
        response res;
        res.status = 204;
        r->reply(std::move(res));
      });

  // ---- Graph: events
  // ------------------------------------------------------------------------

  // Creating, in a named calendar or the default one.
  auto create_event = [self](request& req, const std::string& user_key,
                             const std::string* cal_id, responder_ptr r) {
    std::lock_guard<std::mutex> guard{self->mtx};
    user* u = nullptr;
    auto mb = self->open_mailbox(req, r, user_key, u);
    if (mb == nullptr)
      return;
    auto c = self->open_calendar(req, r, *mb, cal_id);
    if (c == nullptr)
      return;
    event e;
    body_error err;
    if (!self->apply_event_body(req.body, e, true, err))
      return r->reply(
          graph_error(req, 400, err.code, err.message, self->now()));
    // A retried POST with the same transactionId returns the first event.
    // Looked up by index: a scan of the calendar made every initial sync
    // cost the square of its events.
    if (!e.transaction_id.empty()) {
      auto t = c->by_transaction.find(e.transaction_id);
      if (t != c->by_transaction.end()) {
        auto existing = mb->events.find(t->second);
        if (existing != mb->events.end()) {
          json::writer w;
          self->write_event(w, existing->second, *u, {});
          return r->reply(json_response(201, w.take()));
        }
        c->by_transaction.erase(t); // its event is gone
      }
    }
    auto now = self->now();
    e.id = new_item_id();
    e.calendar_id = c->id;
    e.change_key = new_change_key();
    e.ical_uid
        = "040000008200E00074C5B7101A82E008" + to_hex16(crypto::random_u64());
    e.created_ms = now;
    e.modified_ms = now;
    c->event_ids.push_back(e.id);
    if (!e.transaction_id.empty())
      c->by_transaction[e.transaction_id] = e.id;
    self->record_change(*u, *c, e.id);
    mb->events[e.id] = e;
    self->notify_change(*u, *c, e, "created");
    json::writer w;
    self->write_event(w, e, *u, {});
    r->reply(json_response(201, w.take()));
  };
  routes.add(
      "POST", "/v1.0/users/{user}/calendars/{cal}/events",
      [create_event](request& req, const http::path_params& pp,
                     responder_ptr r) { create_event(req, pp[0], &pp[1], r); });
  routes.add("POST", "/v1.0/users/{user}/events",
             [create_event](request& req, const http::path_params& pp,
                            responder_ptr r) {
               create_event(req, pp[0], nullptr, r);
             });

  // Listing (paged), optionally filtered by an extended property.
  auto list_events = [self](request& req, const std::string& user_key,
                            const std::string* cal_id, responder_ptr r) {
    http::query_params q;
    if (!http::parse_query(req.query, q))
      return r->reply(graph_error(req, 400, "BadRequest",
                                  "Invalid query string.", self->now()));
    size_t top = default_event_page, skip = 0;
    if (auto v = http::find_param(q, "$top")) {
      char* end = nullptr;
      auto n = std::strtol(v->c_str(), &end, 10);
      if (v->empty() || *end != '\0' || n < 1 || n > 1000)
        return r->reply(graph_error(req, 400, "ErrorInvalidUrlQuery",
                                    "The value of $top is invalid.",
                                    self->now()));
      top = static_cast<size_t>(n);
    }
    if (auto v = http::find_param(q, "$skip")) {
      char* end = nullptr;
      auto n = std::strtol(v->c_str(), &end, 10);
      if (v->empty() || *end != '\0' || n < 0)
        return r->reply(graph_error(req, 400, "ErrorInvalidUrlQuery",
                                    "The value of $skip is invalid.",
                                    self->now()));
      skip = static_cast<size_t>(n);
    }
    std::string filter_id, filter_value;
    bool filtered = extended_filter(q, filter_id, filter_value);
    auto expand = expanded_props(q);
    auto zone = preferred_zone(req);
    std::lock_guard<std::mutex> guard{self->mtx};
    user* u = nullptr;
    auto mb = self->open_mailbox(req, r, user_key, u);
    if (mb == nullptr)
      return;
    auto c = self->open_calendar(req, r, *mb, cal_id);
    if (c == nullptr)
      return;
    std::vector<const event*> matching;
    for (auto& id : c->event_ids) {
      auto& e = mb->events[id];
      if (filtered) {
        auto p = e.extended_properties.find(filter_id);
        if (p == e.extended_properties.end() || p->second != filter_value)
          continue;
      }
      matching.push_back(&e);
    }
    json::writer w;
    w.begin_object();
    size_t end = std::min(matching.size(), skip + top);
    if (end < matching.size()) {
      // The whole query is carried, with the position, as Graph does.
      std::string next = base_url(req) + raw_path(req) + "?";
      for (auto& [k, v] : q)
        if (k != "$skip")
          next += http::percent_encode(k) + "=" + http::percent_encode(v) + "&";
      next += "$skip=" + std::to_string(end);
      w.key("@odata.nextLink").value(next);
    }
    w.key("value").begin_array();
    for (size_t i = skip; i < end; ++i)
      self->write_event(w, *matching[i], *u, expand, zone);
    w.end_array().end_object();
    auto res = json_response(200, w.take());
    applied_zone(res, zone);
    r->reply(std::move(res));
  };
  routes.add(
      "GET", "/v1.0/users/{user}/calendars/{cal}/events",
      [list_events](request& req, const http::path_params& pp,
                    responder_ptr r) { list_events(req, pp[0], &pp[1], r); });
  routes.add(
      "GET", "/v1.0/users/{user}/events",
      [list_events](request& req, const http::path_params& pp,
                    responder_ptr r) { list_events(req, pp[0], nullptr, r); });

  // One event: GET, PATCH (If-Match), DELETE (If-Match).
  enum class verb { get, patch, del };
  // GET of one event (or occurrence), in the zone the caller prefers.
  auto read_answer = [self](const request& req, const event& e, const user& u,
                            const std::vector<std::string>& expand) {
    auto zone = preferred_zone(req);
    json::writer w;
    self->write_event(w, e, u, expand, zone);
    auto res = json_response(200, w.take());
    applied_zone(res, zone);
    return res;
  };
  // 412 when an If-Match names another change key than the event's.
  auto stale_if_match
      = [self](const request& req, const event& e) -> std::optional<response> {
    auto if_match = req.header("if-match");
    if (if_match.empty() || if_match == "*"
        || if_match == "W/\"" + e.change_key + "\"")
      return std::nullopt;
    return graph_error(
        req, 412, "ErrorIrresolvableConflict",
        "The send or update operation could not be performed because the "
        "change key passed in the request does not match the current "
        "change key for the item.",
        self->now());
  };
  auto one_event = [self, read_answer, stale_if_match](
                       verb v, request& req, const std::string& user_key,
                       const std::string* cal_id, const std::string& ev_id,
                       responder_ptr r) {
    http::query_params q;
    http::parse_query(req.query, q);
    auto expand = expanded_props(q);
    std::lock_guard<std::mutex> guard{self->mtx};
    user* u = nullptr;
    auto mb = self->open_mailbox(req, r, user_key, u);
    if (mb == nullptr)
      return;
    auto i = mb->events.find(ev_id);
    if (i == mb->events.end()) {
      // One occurrence of a series: read, edited (it becomes an exception
      // of the series) or cancelled on its own.
      const event* master = nullptr;
      auto occ = find_occurrence(*mb, nullptr, ev_id, &master);
      if (!occ || (cal_id && occ->calendar_id != *cal_id))
        return r->reply(self->item_not_found(req));
      auto c = self->find_calendar(*mb, occ->calendar_id);
      if (v == verb::get)
        return r->reply(read_answer(req, *occ, *u, expand));
      if (auto refused = stale_if_match(req, *occ))
        return r->reply(std::move(*refused));
      if (v == verb::del) {
        // The series reports the cancelled occurrence as removed.
        c->changed_series[master->id].push_back(*master);
        c->exceptions.erase(ev_id);
        c->cancelled.insert(ev_id);
        self->record_change(*u, *c, master->id);
        self->notify_change(*u, *c, *occ, "deleted");
        response res;
        res.status = 204;
        return r->reply(std::move(res));
      }
      auto updated = *occ;
      body_error err;
      if (!self->apply_event_body(req.body, updated, false, err))
        return r->reply(
            graph_error(req, 400, err.code, err.message, self->now()));
      if (updated.recurrence.active)
        return r->reply(graph_error(req, 400, "ErrorInvalidRequest",
                                    "An occurrence cannot get a recurrence.",
                                    self->now()));
      updated.change_key = new_change_key();
      updated.modified_ms = std::max(self->now(), occ->modified_ms + 1);
      updated.exception = true;
      c->exceptions[ev_id] = updated;
      self->record_change(*u, *c, master->id);
      self->notify_change(*u, *c, updated, "updated");
      json::writer w;
      self->write_event(w, updated, *u, {});
      return r->reply(json_response(200, w.take()));
    }
    if (cal_id && i->second.calendar_id != *cal_id)
      return r->reply(self->item_not_found(req));
    auto& e = i->second;
    if (v == verb::get)
      return r->reply(read_answer(req, e, *u, expand));
    if (auto refused = stale_if_match(req, e))
      return r->reply(std::move(*refused));
    if (v == verb::del) {
      auto c = self->find_calendar(*mb, e.calendar_id);
      if (c != nullptr)
        c->event_ids.erase(
            std::remove(c->event_ids.begin(), c->event_ids.end(), ev_id),
            c->event_ids.end());
      if (c != nullptr) {
        if (e.recurrence.active) {
          c->deleted_series[ev_id] = e;
          auto prefix = ev_id + "_";
          for (auto x = c->exceptions.lower_bound(prefix);
               x != c->exceptions.end()
               && x->first.compare(0, prefix.size(), prefix) == 0;)
            x = c->exceptions.erase(x);
          for (auto x = c->cancelled.lower_bound(prefix);
               x != c->cancelled.end()
               && x->compare(0, prefix.size(), prefix) == 0;)
            x = c->cancelled.erase(x);
        }
        self->record_change(*u, *c, ev_id);
        self->notify_change(*u, *c, e, "deleted");
      }
      mb->events.erase(i);
      response res;
      res.status = 204;
      return r->reply(std::move(res));
    }
    auto updated = e;
    body_error err;
    if (!self->apply_event_body(req.body, updated, false, err))
      return r->reply(
          graph_error(req, 400, err.code, err.message, self->now()));
    updated.change_key = new_change_key();
    updated.modified_ms = std::max(self->now(), e.modified_ms + 1);
    auto c = self->find_calendar(*mb, e.calendar_id);
    if (c != nullptr && e.recurrence.active
        && (!updated.recurrence.active
            || updated.recurrence.json != e.recurrence.json
            || updated.start_ms != e.start_ms)) {
      auto& versions = c->changed_series[e.id];
      versions.push_back(e);
      constexpr size_t kept = 16;
      if (versions.size() > kept)
        versions.erase(versions.begin());
    }
    e = updated;
    if (c != nullptr) {
      self->record_change(*u, *c, e.id);
      self->notify_change(*u, *c, e, "updated");
    }
    json::writer w;
    self->write_event(w, e, *u, {});
    r->reply(json_response(200, w.take()));
  };
  struct verb_route {
    const char* method;
    verb v;
  };
  for (auto vr :
       {verb_route{"GET", verb::get}, verb_route{"PATCH", verb::patch},
        verb_route{"DELETE", verb::del}}) {
    auto v = vr.v;
    routes.add(vr.method, "/v1.0/users/{user}/events/{event}",
               [one_event, v](request& req, const http::path_params& pp,
                              responder_ptr r) {
                 one_event(v, req, pp[0], nullptr, pp[1], r);
               });
    routes.add(vr.method, "/v1.0/users/{user}/calendars/{cal}/events/{event}",
               [one_event, v](request& req, const http::path_params& pp,
                              responder_ptr r) {
                 one_event(v, req, pp[0], &pp[1], pp[2], r);
               });
  }

  // ---- Graph: calendarView and calendarView/delta
  // -------------------------------

  // The window of a calendarView request; answers 400 itself when absent.
  auto read_window = [self](const request& req, const http::query_params& q,
                            const responder_ptr& r, int64_t& start,
                            int64_t& end) {
    auto s = http::find_param(q, "startDateTime");
    auto e = http::find_param(q, "endDateTime");
    auto parse = [](const std::string& text) -> std::optional<int64_t> {
      // ISO 8601; without an offset the value is read as UTC.
      if (auto v = parse_rfc3339_ms(text))
        return v;
      return parse_rfc3339_ms(text + "Z");
    };
    std::optional<int64_t> ps, pe;
    if (s != nullptr)
      ps = parse(*s);
    if (e != nullptr)
      pe = parse(*e);
    if (!ps || !pe) {
      r->reply(graph_error(req, 400, "ErrorInvalidParameter",
                           "This request requires a time window specified by "
                           "the query string parameters StartDateTime and "
                           "EndDateTime.",
                           self->now()));
      return false;
    }
    start = *ps;
    end = *pe;
    return true;
  };

  auto overlaps = [](const event& e, int64_t start, int64_t end) {
    if (e.start_ms == e.end_ms)
      return e.start_ms >= start && e.start_ms < end;
    return e.start_ms < end && e.end_ms > start;
  };

  auto calendar_view = [self, read_window,
                        overlaps](request& req, const std::string& user_key,
                                  const std::string* cal_id, responder_ptr r) {
    http::query_params q;
    http::parse_query(req.query, q);
    int64_t start = 0, end = 0;
    auto zone = preferred_zone(req);
    if (!read_window(req, q, r, start, end))
      return;
    size_t top = default_event_page, skip = 0;
    if (auto v = http::find_param(q, "$top"))
      top = std::max<long>(1, std::min<long>(1000, std::atol(v->c_str())));
    if (auto v = http::find_param(q, "$skip"))
      skip = static_cast<size_t>(std::max<long>(0, std::atol(v->c_str())));
    std::lock_guard<std::mutex> guard{self->mtx};
    user* u = nullptr;
    auto mb = self->open_mailbox(req, r, user_key, u);
    if (mb == nullptr)
      return;
    auto c = self->open_calendar(req, r, *mb, cal_id);
    if (c == nullptr)
      return;
    auto in = instances_in(*mb, *c, start, end, overlaps);
    std::sort(in.begin(), in.end(), [](const event& a, const event& b) {
      return a.start_ms < b.start_ms;
    });
    json::writer w;
    w.begin_object();
    size_t stop = std::min(in.size(), skip + top);
    if (stop < in.size()) {
      std::string next = base_url(req) + raw_path(req) + "?";
      for (auto& [k, v] : q)
        if (k != "$skip")
          next += http::percent_encode(k) + "=" + http::percent_encode(v) + "&";
      w.key("@odata.nextLink").value(next + "$skip=" + std::to_string(stop));
    }
    w.key("value").begin_array();
    for (size_t i = skip; i < stop; ++i)
      self->write_event(w, in[i], *u, {}, zone);
    w.end_array().end_object();
    auto res = json_response(200, w.take());
    applied_zone(res, zone);
    r->reply(std::move(res));
  };
  routes.add("GET", "/v1.0/users/{user}/calendars/{cal}/calendarView",
             [calendar_view](request& req, const http::path_params& pp,
                             responder_ptr r) {
               calendar_view(req, pp[0], &pp[1], r);
             });
  routes.add("GET", "/v1.0/users/{user}/calendarView",
             [calendar_view](request& req, const http::path_params& pp,
                             responder_ptr r) {
               calendar_view(req, pp[0], nullptr, r);
             });

  // Delta rounds: the first request (a window) or a deltaLink computes the
  // round's items, which are then paged with $skiptoken; the last page
  // carries the deltaLink of the next generation.
  auto calendar_delta = [self, read_window,
                         overlaps](request& req, const std::string& user_key,
                                   const std::string* cal_id, responder_ptr r) {
    http::query_params q;
    http::parse_query(req.query, q);
    size_t page_size = default_event_page;
    auto zone = preferred_zone(req);
    auto prefer = req.header("prefer");
    auto mp = prefer.find("odata.maxpagesize=");
    if (mp != std::string_view::npos)
      page_size = std::max<long>(
          1, std::atol(std::string{prefer.substr(mp + 18)}.c_str()));
    auto gone = [&] {
      r->reply(graph_error(req, 410, "SyncStateNotFound",
                           "The sync state generation is not found.",
                           self->now()));
    };
    std::unique_lock<std::mutex> guard{self->mtx};
    user* u = nullptr;
    auto mb = self->open_mailbox(req, r, user_key, u);
    if (mb == nullptr)
      return;
    auto c = self->open_calendar(req, r, *mb, cal_id);
    if (c == nullptr)
      return;
    // A page is named by its round and offset, so fetching the same
    // nextLink twice (a retried request) gives the same page.
    std::string page_key;
    size_t offset = 0;
    if (auto skiptoken = http::find_param(q, "$skiptoken")) {
      auto dot = skiptoken->rfind('.');
      if (dot == std::string::npos)
        return gone();
      page_key = skiptoken->substr(0, dot);
      auto digits = skiptoken->substr(dot + 1);
      if (self->dir.delta_pages.count(page_key) == 0 || digits.empty()
          || digits.size() > 9
          || digits.find_first_not_of("0123456789") != std::string::npos)
        return gone();
      offset = std::stoul(digits);
    } else {
      delta_token from;
      bool initial = true;
      if (auto dt = http::find_param(q, "$deltatoken")) {
        auto t = self->dir.delta_tokens.find(*dt);
        if (t == self->dir.delta_tokens.end() || t->second.user_id != u->id
            || t->second.calendar_id != c->id
            || self->dir.delta_chains[t->second.chain] != t->second.generation)
          return gone();
        from = t->second;
        initial = false;
      } else {
        guard.unlock();
        int64_t start = 0, end = 0;
        if (!read_window(req, q, r, start, end))
          return;
        guard.lock();
        from.user_id = u->id;
        from.calendar_id = c->id;
        from.start_ms = start;
        from.end_ms = end;
        from.chain = crypto::random_token(12);
        from.generation = 0;
        self->dir.delta_chains[from.chain] = 0;
        self->dir.calendar_chains[{u->id, c->id}].insert(from.chain);
      }
      delta_page page;
      std::set<std::string> changed;
      if (initial) {
        for (auto& id : c->event_ids)
          changed.insert(id);
      } else {
        for (auto& [seq, id] : c->log)
          if (seq > from.seq)
            changed.insert(id);
      }
      for (auto& id : changed) {
        auto e = mb->events.find(id);
        auto earlier = c->changed_series.find(id);
        if (!initial && e != mb->events.end()
            && earlier != c->changed_series.end()) {
          // A series whose recurrence changed: occurrences of its earlier
          // versions that it no longer has are gone (a shortened series).
          std::set<std::string> now;
          if (e->second.recurrence.active)
            for (auto& occ :
                 occurrences_of(*c, e->second, from.start_ms, from.end_ms))
              now.insert(occ.id);
          std::set<std::string> reported;
          for (auto& before : earlier->second)
            for (auto& occ : expand_series(before, from.start_ms, from.end_ms))
              if (!now.count(occ.id) && reported.insert(occ.id).second)
                page.items.push_back(removed_json(occ.id));
        }
        if (e != mb->events.end() && e->second.recurrence.active) {
          // A changed series: its occurrences in the window, in full.
          for (auto& occ :
               occurrences_of(*c, e->second, from.start_ms, from.end_ms)) {
            json::writer w;
            self->write_event(w, occ, *u, {}, zone);
            page.items.push_back(w.take());
          }
          continue;
        }
        auto gone = c->deleted_series.find(id);
        if (e == mb->events.end() && gone != c->deleted_series.end()
            && !initial) {
          // A deleted series: each of its occurrences in the window goes.
          for (auto& occ :
               expand_series(gone->second, from.start_ms, from.end_ms))
            page.items.push_back(removed_json(occ.id));
        }
        json::writer w;
        if (e != mb->events.end()
            && overlaps(e->second, from.start_ms, from.end_ms)) {
          self->write_event(w, e->second, *u, {}, zone);
        } else if (!initial) {
          // Deleted, or moved out of the window: Graph says "deleted".
          page.items.push_back(removed_json(id));
          continue;
        } else {
          continue;
        }
        page.items.push_back(w.take());
      }
      page.next = from;
      page.next.seq = c->seq;
      page.next.generation = from.generation + 1;
      page_key = crypto::random_token(24);
      // A chain keeps only its newest round.
      auto& round = self->dir.chain_rounds[from.chain];
      self->dir.delta_pages.erase(round);
      round = page_key;
      self->dir.delta_pages[page_key] = std::move(page);
    }
    auto& page = self->dir.delta_pages[page_key];
    auto base = base_url(req) + raw_path(req);
    json::writer w;
    w.begin_object();
    w.key("@odata.context")
        .value(base_url(req) + "/v1.0/$metadata#Collection(event)");
    offset = std::min(offset, page.items.size());
    size_t stop = std::min(page.items.size(), offset + page_size);
    std::vector<std::string> items(page.items.begin() + offset,
                                   page.items.begin() + stop);
    if (stop < page.items.size()) {
      w.key("@odata.nextLink")
          .value(base + "?$skiptoken=" + page_key + "." + std::to_string(stop));
    } else {
      if (page.link_token.empty()) {
        page.link_token = crypto::random_token(32);
        self->dir.delta_chains[page.next.chain] = page.next.generation;
        // The chain's previous token is superseded: drop it (its replay
        // then answers 410 like Graph's), which also bounds what is kept.
        auto& latest = self->dir.chain_tokens[page.next.chain];
        self->dir.delta_tokens.erase(latest);
        latest = page.link_token;
        self->dir.delta_tokens[page.link_token] = page.next;
      }
      w.key("@odata.deltaLink").value(base + "?$deltatoken=" + page.link_token);
    }
    w.key("value").begin_array();
    for (auto& item : items)
      w.raw(item);
    w.end_array().end_object();
    auto res = json_response(200, w.take());
    res.headers.emplace_back("Preference-Applied", "odata.track-changes");
    applied_zone(res, zone);
    r->reply(std::move(res));
  };
  routes.add("GET", "/v1.0/users/{user}/calendars/{cal}/calendarView/delta",
             [calendar_delta](request& req, const http::path_params& pp,
                              responder_ptr r) {
               calendar_delta(req, pp[0], &pp[1], r);
             });
  routes.add("GET", "/v1.0/users/{user}/calendarView/delta",
             [calendar_delta](request& req, const http::path_params& pp,
                              responder_ptr r) {
               calendar_delta(req, pp[0], nullptr, r);
             });

  // Forgets every delta token, as Exchange does when its cache evicts
  // them: the next use of a deltaLink answers 410 SyncStateNotFound.
  routes.add(
      "POST", "/_emulator/evict-delta-tokens",
      [self](request&, const http::path_params&, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        auto n = self->dir.delta_tokens.size();
        self->dir.delta_tokens.clear();
        self->dir.delta_pages.clear();
        r->reply(json_response(200, "{\"evicted\":" + std::to_string(n) + "}"));
      });

  // A person deletes one of their calendars in Outlook: the calendar and
  // its events are gone and subscriptions on it end (subscriptionRemoved),
  // whichever app created them. The default calendar cannot be deleted.
  routes.add(
      "DELETE", "/_emulator/users/{user}/calendars/{cal}",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        auto u = self->find_any_user(pp[0]);
        if (u == nullptr)
          return r->reply(self->user_not_found(req, pp[0]));
        auto mb = self->dir.mailboxes.find(u->id);
        auto c = mb == self->dir.mailboxes.end()
                     ? nullptr
                     : self->find_calendar(mb->second, pp[1]);
        if (c == nullptr)
          return r->reply(self->item_not_found(req));
        if (c->is_default)
          return r->reply(graph_error(req, 400, "ErrorCannotDeleteObject",
                                      "The default calendar cannot be deleted.",
                                      self->now()));
        self->delete_calendar(*u, mb->second, *c);
        response res;
        res.status = 204;
        r->reply(std::move(res));
      });

  // ---- Graph: subscriptions
  // ---------------------------------------------------------

  routes.add(
      "POST", "/v1.0/subscriptions",
      [self](request& req, const http::path_params&, responder_ptr r) {
        auto bad = [&](std::string message) {
          r->reply(
              graph_error(req, 400, "InvalidRequest", message, self->now()));
        };
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return bad(err.message);
        subscription s;
        std::string resource, expiration;
        element v;
        if (o["changeType"].get(v) || !read_string(v, s.change_types)
            || s.change_types.empty())
          return bad("'changeType' is required.");
        for (auto part : split_list(s.change_types))
          if (part != "created" && part != "updated" && part != "deleted")
            return bad("Invalid 'changeType' value '" + part + "'.");
        if (o["notificationUrl"].get(v) || !read_string(v, s.notification_url))
          return bad("'notificationUrl' is required.");
        if (!o["lifecycleNotificationUrl"].get(v))
          read_string(v, s.lifecycle_url);
        if (o["resource"].get(v) || !read_string(v, resource))
          return bad("'resource' is required.");
        if (o["expirationDateTime"].get(v) || !read_string(v, expiration))
          return bad("'expirationDateTime' is required.");
        if (!o["clientState"].get(v)) {
          if (!read_string(v, s.client_state) || s.client_state.size() > 128)
            return bad("'clientState' must be a string of at most 128 "
                       "characters.");
          s.has_client_state = true;
        }
        for (auto* url : {&s.notification_url, &s.lifecycle_url})
          if (!url->empty() && !acceptable_notification_url(*url))
            return bad(
                "Subscription validation request failed. Notification "
                "endpoint must use https (plain http only on loopback): '"
                + *url + "'.");
        auto expires = parse_rfc3339_ms(expiration);
        if (!expires)
          return bad("'expirationDateTime' is not a valid date and time.");
        s.expires_ms = *expires;
        {
          std::lock_guard<std::mutex> guard{self->mtx};
          response auth_err;
          auto tok = self->check_token(req, auth_err);
          if (tok == nullptr)
            return r->reply(std::move(auth_err));
          auto max_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            self->cfg.max_subscription_lifetime)
                            .count();
          if (s.expires_ms <= self->now())
            return bad("Subscription expiration must be in the future.");
          if (s.expires_ms > self->now() + max_ms)
            return r->reply(graph_error(req, 400, "ExtensionError",
                                        "Subscription expiration can only be "
                                            + std::to_string(max_ms / 60000)
                                            + " minutes in the future.",
                                        self->now()));
          // /users/{id}/events (default calendar) or
          // /users/{id}/calendars/{id}/events.
          std::vector<std::string> segs;
          for (auto seg : http::split_path(resource))
            segs.emplace_back(seg);
          bool shape_ok
              = (segs.size() == 3 || segs.size() == 5)
                && ascii_lower(segs[0]) == "users"
                && ascii_lower(segs.back()) == "events"
                && (segs.size() == 3 || ascii_lower(segs[2]) == "calendars");
          if (!shape_ok)
            return bad("Resource '" + resource + "' is not supported.");
          auto u = self->resolve_user(req, r, *tok, segs[1]);
          if (u == nullptr)
            return;
          user* owner = nullptr;
          auto mb = self->open_mailbox(req, r, u->id, owner);
          if (mb == nullptr)
            return;
          if (segs.size() == 5) {
            if (self->find_calendar(*mb, segs[3]) == nullptr)
              return r->reply(self->item_not_found(req));
            s.calendar_id = segs[3];
          }
          s.user_id = u->id;
          s.client_id = tok->client_id;
          s.tenant_id = tok->tenant_id;
          s.resource = resource;
        }
        // The handshake talks to the subscriber: never under the lock.
        std::string why;
        if (!self->notifications.validate(s.notification_url, why)
            || (!s.lifecycle_url.empty()
                && !self->notifications.validate(s.lifecycle_url, why)))
          return bad("Subscription validation request failed. " + why);
        s.id = new_guid();
        std::lock_guard<std::mutex> guard{self->mtx};
        self->add_subscription(s);
        r->reply(json_response(201, self->subscription_json(req, s)));
      });

  routes.add("GET", "/v1.0/subscriptions",
             [self](request& req, const http::path_params&, responder_ptr r) {
               std::lock_guard<std::mutex> guard{self->mtx};
               response err;
               auto tok = self->check_token(req, err);
               if (tok == nullptr)
                 return r->reply(std::move(err));
               self->expire_subscriptions();
               // A subscription's user is in its tenant: the tenant's users'
               // subscriptions, in id order as before, not every one there is.
               std::set<std::string> ids;
               auto t = self->dir.tenants.find(tok->tenant_id);
               if (t != self->dir.tenants.end())
                 for (auto& uid : t->second.user_ids) {
                   auto mine = self->dir.subscriptions_by_user.find(uid);
                   if (mine != self->dir.subscriptions_by_user.end())
                     ids.insert(mine->second.begin(), mine->second.end());
                 }
               std::string body = "{\"value\":[";
               bool first = true;
               for (auto& id : ids) {
                 auto i = self->dir.subscriptions.find(id);
                 if (i == self->dir.subscriptions.end()
                     || i->second.client_id != tok->client_id
                     || i->second.tenant_id != tok->tenant_id)
                   continue;
                 if (!first)
                   body += ',';
                 first = false;
                 body += self->subscription_json(req, i->second);
               }
               body += "]}";
               r->reply(json_response(200, body));
             });

  enum class sub_verb { get, patch, del };
  auto one_subscription = [self](sub_verb v, request& req,
                                 const std::string& id, responder_ptr r) {
    std::string new_expiration;
    if (v == sub_verb::patch) {
      object o;
      body_error err;
      element e;
      if (!parse_body(req.body, o, err) || o["expirationDateTime"].get(e)
          || !read_string(e, new_expiration))
        return r->reply(graph_error(req, 400, "InvalidRequest",
                                    "'expirationDateTime' is required.",
                                    self->now()));
    }
    std::lock_guard<std::mutex> guard{self->mtx};
    response err;
    auto tok = self->check_token(req, err);
    if (tok == nullptr)
      return r->reply(std::move(err));
    self->expire_subscriptions();
    auto i = self->dir.subscriptions.find(id);
    if (i == self->dir.subscriptions.end()
        || i->second.client_id != tok->client_id
        || i->second.tenant_id != tok->tenant_id)
      return r->reply(graph_error(req, 404, "ResourceNotFound",
                                  "The object was not found.", self->now()));
    if (v == sub_verb::del) {
      self->erase_subscription(i);
      response res;
      res.status = 204;
      return r->reply(std::move(res));
    }
    if (v == sub_verb::patch) {
      auto expires = parse_rfc3339_ms(new_expiration);
      auto max_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        self->cfg.max_subscription_lifetime)
                        .count();
      if (!expires || *expires <= self->now())
        return r->reply(graph_error(req, 400, "InvalidRequest",
                                    "Subscription expiration must be a time "
                                    "in the future.",
                                    self->now()));
      if (*expires > self->now() + max_ms)
        return r->reply(graph_error(req, 400, "ExtensionError",
                                    "Subscription expiration can only be "
                                        + std::to_string(max_ms / 60000)
                                        + " minutes in the future.",
                                    self->now()));
      self->renew_subscription(i->second, *expires);
    }
    r->reply(json_response(200, self->subscription_json(req, i->second)));
  };
  for (auto [method, v] : {std::pair{"GET", sub_verb::get},
                           {"PATCH", sub_verb::patch},
                           {"DELETE", sub_verb::del}}) {
    auto verb = v;
    routes.add(method, "/v1.0/subscriptions/{id}",
               [one_subscription, verb](
                   request& req, const http::path_params& pp, responder_ptr r) {
                 one_subscription(verb, req, pp[0], r);
               });
  }

  // Every live subscription of every app and tenant, with its clientState
  // (what a test or benchmark needs to post notifications as Graph would).
  routes.add(
      "GET", "/_emulator/subscriptions",
      [self](request&, const http::path_params&, responder_ptr r) {
        std::lock_guard<std::mutex> guard{self->mtx};
        self->expire_subscriptions();
        json::writer w;
        w.begin_object().key("value").begin_array();
        for (auto& [id, s] : self->dir.subscriptions) {
          w.begin_object().key("id").value(id);
          w.key("resource").value(s.resource);
          w.key("applicationId").value(s.client_id);
          w.key("tenantId").value(s.tenant_id);
          w.key("notificationUrl").value(s.notification_url);
          w.key("clientState");
          if (s.has_client_state)
            w.value(s.client_state);
          else
            w.null();
          w.key("expirationDateTime").value(format_rfc3339_ms(s.expires_ms));
          w.end_object();
        }
        w.end_array().end_object();
        r->reply(json_response(200, w.take()));
      });

  // Sends a lifecycle notification (reauthorizationRequired,
  // subscriptionRemoved, missed); subscriptionRemoved also removes it.
  routes.add(
      "POST", "/_emulator/subscriptions/{id}/lifecycle",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        object o;
        body_error err;
        element e;
        std::string event_name;
        if (!parse_body(req.body, o, err) || o["lifecycleEvent"].get(e)
            || !read_string(e, event_name)
            || (event_name != "reauthorizationRequired"
                && event_name != "subscriptionRemoved"
                && event_name != "missed"))
          return r->reply(
              graph_error(req, 400, "BadRequest",
                          "'lifecycleEvent' must be reauthorizationRequired, "
                          "subscriptionRemoved or missed",
                          self->now()));
        std::lock_guard<std::mutex> guard{self->mtx};
        auto i = self->dir.subscriptions.find(pp[0]);
        if (i == self->dir.subscriptions.end())
          return r->reply(graph_error(req, 404, "ResourceNotFound",
                                      "no such subscription", self->now()));
        if (i->second.lifecycle_url.empty())
          return r->reply(graph_error(
              req, 409, "Conflict",
              "the subscription has no lifecycleNotificationUrl", self->now()));
        if (event_name == "subscriptionRemoved")
          self->remove_subscription(i);
        else
          self->notify_lifecycle(i->second, event_name);
        response res;
        res.status = 202;
        r->reply(std::move(res));
      });

  // ---- Graph: sendMail
  // ---------------------------------------------------------------------

  routes.add(
      "POST", "/v1.0/users/{user}/sendMail",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return r->reply(
              graph_error(req, 400, "BadRequest", err.message, self->now()));
        element message;
        size_t recipients = 0;
        if (!o["message"].get(message))
          for (const char* field :
               {"toRecipients", "ccRecipients", "bccRecipients"}) {
            simdjson::dom::array list;
            if (!message[field].get_array().get(list))
              recipients += list.size();
          }
        if (recipients == 0)
          return r->reply(graph_error(
              req, 400, "ErrorInvalidRecipients",
              "At least one recipient isn't valid., A message can't be sent "
              "because it contains no recipients.",
              self->now()));
        sent_mail m;
        m.message_json = to_json_text(message);
        bool save = true;
        if (!o["saveToSentItems"].get_bool().get(save))
          m.save_to_sent_items = save;
        std::lock_guard<std::mutex> guard{self->mtx};
        user* u = nullptr;
        auto mb = self->open_mailbox(req, r, pp[0], u);
        if (mb == nullptr)
          return;
        m.sent_ms = self->now();
        mb->outbox.push_back(std::move(m));
        response res;
        res.status = 202;
        res.headers.emplace_back("request-id", new_guid());
        r->reply(std::move(res));
      });
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

} // namespace

void service::handle(http::request&& req, http::responder_ptr r) {
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
