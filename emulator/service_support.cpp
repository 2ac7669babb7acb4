// graph-emulator: helpers every resource of the service uses (ids, Graph's
// and OAuth's error shapes, request bits, JSON input).
#include "emulator/service_impl.hpp"

#include <cstdio>

#include "common/crypto.hpp"
#include "common/text.hpp"
#include "common/time_format.hpp"
#include "emulator/time_zones.hpp"

namespace crmsync::emulator {

// -- identifiers --------------------------------------------------------------

std::string new_guid() {
  return crypto::random_guid();
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

/// The slot of the request the current thread is dispatching, if any.
thread_local mailbox_slot* current_slot = nullptr;
/// True while the items of a $batch are dispatched: they answer at once
/// (into the batch's answer), and the batch as a whole carries the
/// injected latency.
thread_local bool dispatching_batch_items = false;

} // namespace crmsync::emulator
