#include "graph/wire.hpp"

#include <simdjson.h>

#include <cctype>
#include <string>

#include "http/url.hpp"

namespace crmsync::graph::wire {

namespace {

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size())
    return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (lower(s[i]) != lower(prefix[i]))
      return false;
  return true;
}

bool is_host_char(char c) {
  auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '-' || c == '.' || c == '_';
}

bool parse_port(std::string_view text, uint16_t& port) {
  if (text.empty() || text.size() > 5)
    return false;
  unsigned long v = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + static_cast<unsigned long>(c - '0');
  }
  if (v == 0 || v > 65535)
    return false;
  port = static_cast<uint16_t>(v);
  return true;
}

} // namespace

std::string origin::key() const {
  bool v6 = host.find(':') != std::string::npos;
  return std::string{https ? "https://" : "http://"}
         + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool origin::operator==(const origin& o) const {
  return https == o.https && host == o.host && port == o.port;
}

bool is_absolute(std::string_view s) {
  return starts_with_nocase(s, "http://") || starts_with_nocase(s, "https://");
}

bool parse_url(std::string_view text, url& out, std::string& err) {
  const std::string shown{text};
  std::string_view rest;
  if (starts_with_nocase(text, "https://")) {
    out.where.https = true;
    rest = text.substr(8);
  } else if (starts_with_nocase(text, "http://")) {
    out.where.https = false;
    rest = text.substr(7);
  } else {
    err = "'" + shown + "' is not an absolute http:// or https:// URL";
    return false;
  }
  if (text.find('#') != std::string_view::npos) {
    err = "'" + shown + "' has a fragment";
    return false;
  }
  for (char c : text)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      err = "'" + shown + "' contains spaces or control characters";
      return false;
    }
  auto end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  std::string_view target
      = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    err = "'" + shown + "' carries user info";
    return false;
  }
  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      err = "'" + shown + "' has an unterminated IPv6 literal";
      return false;
    }
    host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        err = "'" + shown + "' has junk after its IPv6 literal";
        return false;
      }
      has_port = true;
      port_text = after.substr(1);
    }
    for (char c : host)
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':'
          && c != '.') {
        err = "'" + shown + "' has a bad IPv6 literal";
        return false;
      }
  } else {
    auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    for (char c : host)
      if (!is_host_char(c)) {
        err = "'" + shown + "' has a bad character in its host name";
        return false;
      }
  }
  if (host.empty()) {
    err = "'" + shown + "' has no host";
    return false;
  }
  out.where.port = out.where.https ? 443 : 80;
  if (has_port && !parse_port(port_text, out.where.port)) {
    err = "'" + shown + "' has a bad port";
    return false;
  }
  out.where.host.clear();
  for (char c : host)
    out.where.host += lower(c);
  if (target.empty())
    out.target = "/";
  else if (target.front() == '?')
    out.target = "/" + std::string{target};
  else
    out.target = std::string{target};
  return true;
}

bool is_loopback(std::string_view host) {
  if (host == "localhost" || host == "::1")
    return true;
  if (host.substr(0, 4) != "127.")
    return false;
  // A dotted-quad IPv4 address in 127.0.0.0/8, not a name like 127.example.
  int dots = 0;
  for (char c : host) {
    if (c == '.')
      ++dots;
    else if (c < '0' || c > '9')
      return false;
  }
  return dots == 3;
}

bool transport_allowed(const url& u, std::string& err) {
  if (u.where.https || is_loopback(u.where.host))
    return true;
  err = "plain http to '" + u.where.host
        + "' is refused: only loopback hosts may be reached without TLS";
  return false;
}

bool parse_error_body(std::string_view body, std::string& code,
                      std::string& message) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (body.empty() || parser.parse(body.data(), body.size()).get(root))
    return false;
  simdjson::dom::element e;
  if (root["error"].get(e))
    return false;
  std::string_view sv;
  if (e.is_object()) {
    if (e["code"].get_string().get(sv))
      return false;
    code = std::string{sv};
    message
        = e["message"].get_string().get(sv) ? std::string{} : std::string{sv};
    return true;
  }
  if (e.get_string().get(sv))
    return false;
  code = std::string{sv};
  message = root["error_description"].get_string().get(sv) ? std::string{}
                                                           : std::string{sv};
  return true;
}

std::optional<int64_t> parse_retry_after(std::string_view value) {
  while (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ')
    value.remove_suffix(1);
  if (value.empty() || value.size() > 9)
    return std::nullopt;
  int64_t v = 0;
  for (char c : value) {
    if (c < '0' || c > '9')
      return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && starts_with_nocase(a, b);
}

std::optional<int64_t> item_retry_after(simdjson::dom::element item) {
  simdjson::dom::object headers;
  if (item["headers"].get_object().get(headers))
    return std::nullopt;
  for (auto kv : headers) {
    if (!iequals(kv.key, "retry-after"))
      continue;
    std::string_view v;
    if (!kv.value.get_string().get(v))
      return parse_retry_after(v);
    int64_t n = 0;
    if (!kv.value.get_int64().get(n))
      return n;
  }
  return std::nullopt;
}

} // namespace

bool parse_batch_answer(std::string_view body, std::vector<batch_item>& out) {
  out.clear();
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::array items;
  if (parser.parse(body.data(), body.size()).get(root)
      || root["responses"].get_array().get(items))
    return false;
  for (simdjson::dom::element item : items) {
    std::string_view id;
    batch_item one;
    if (item["id"].get_string().get(id)
        || item["status"].get_int64().get(one.status))
      continue;
    one.id = std::string{id};
    simdjson::dom::element b;
    if (!item["body"].get(b))
      one.body = simdjson::minify(b);
    one.retry_after = item_retry_after(item);
    out.push_back(std::move(one));
  }
  return true;
}

std::string mailbox_of(std::string_view target, std::string_view base_path) {
  auto path = target.substr(0, target.find('?'));
  if (path.substr(0, base_path.size()) != base_path)
    return {};
  path.remove_prefix(base_path.size());
  constexpr std::string_view users = "/users/";
  if (!starts_with_nocase(path, users))
    return {};
  path.remove_prefix(users.size());
  auto slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == path.size())
    return {};
  std::string id;
  if (!http::percent_decode(path.substr(0, slash), id, false))
    return std::string{path.substr(0, slash)};
  return id;
}

} // namespace crmsync::graph::wire
