// crmsyncctl doctor (issue 16, t16-m365): the Microsoft 365 checklist of
// docs/MICROSOFT365.md, run against a live configuration.
//
//   node               the node answers POST /admin/v1/doctor and accepts
//                      the admin token;
//   token_endpoint     (run by the node, which holds the secret) the
//   tenant_consent     identity platform gives the app a token; the
//                      tenant's consent lets it read Graph (--tenant);
//   webhook_handshake  (run here, outside the node, as Graph would) the
//                      public URL answers Graph's validation handshake on
//                      /webhooks/graph and /webhooks/graph/lifecycle: a
//                      POST with ?validationToken= answered 200 text/plain
//                      with the decoded token within 10 s; a public URL
//                      that is not https is a warning (Graph needs https).
//
// Each check prints PASS, WARN, FAIL or SKIP with a message and, when it
// does not pass, a hint. Exit 0 when every check passed (warnings
// included), 1 otherwise.
#include "ctl/doctor.hpp"

#include "common/json_text.hpp"
#include "ctl/format.hpp"
#include "ctl/render.hpp"
#include "http/client.hpp"

#include <simdjson.h>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <random>
#include <vector>

namespace crmsync::ctl {

namespace {

namespace dom = simdjson::dom;

/// Graph's deadline for the handshake's answer.
constexpr auto handshake_deadline = std::chrono::seconds(10);

struct check {
  std::string name;
  std::string status; ///< pass, warn, fail, skip
  std::string message;
  std::string hint;
};

/// An absolute http(s) URL taken apart.
struct target_url {
  bool https = false;
  std::string host;
  uint16_t port = 0;
  std::string path; ///< without a trailing '/' ("" for the root)
};

bool split_public_url(const std::string& url, target_url& out,
                      std::string& err) {
  std::string_view rest{url};
  if (rest.rfind("https://", 0) == 0) {
    out.https = true;
    rest.remove_prefix(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else {
    err = "'" + url + "' is not an http:// or https:// URL";
    return false;
  }
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{}
                                                          : rest.substr(slash);
  if (authority.empty() || authority.find('@') != std::string_view::npos
      || path.find_first_of("?#") != std::string_view::npos
      || url.find_first_of(" \t\r\n") != std::string::npos) {
    err = "'" + url
          + "' is not a base URL (scheme, host, optional port and path; no "
            "user, query or fragment)";
    return false;
  }
  std::string_view host = authority, port;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      err = "'" + url + "' has an unclosed IPv6 address";
      return false;
    }
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') {
        err = "'" + url + "' has a bad port";
        return false;
      }
      port = authority.substr(close + 2);
    }
  } else if (auto colon = authority.rfind(':');
             colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  out.host = std::string{host};
  out.port = out.https ? 443 : 80;
  if (!port.empty() || authority.back() == ':') {
    unsigned long n = 0;
    for (char c : port)
      if (c < '0' || c > '9' || (n = n * 10 + (c - '0')) > 65535) {
        n = 0;
        break;
      }
    if (n == 0) {
      err = "'" + url + "' has a bad port";
      return false;
    }
    out.port = static_cast<uint16_t>(n);
  }
  out.path = std::string{path};
  while (!out.path.empty() && out.path.back() == '/')
    out.path.pop_back();
  return true;
}

/// A token like Graph's: opaque, with characters that must be
/// percent-encoded in the query (so a server must decode it, as Graph
/// requires, and a proxy must pass the query through unchanged).
std::string random_token() {
  static const char alphabet[]
      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::uniform_int_distribution<int> pick(0, sizeof alphabet - 2);
  std::string t = "crmsync-doctor ";
  for (int i = 0; i < 32; ++i)
    t += alphabet[pick(rd)];
  return t + " +/=:";
}

std::string lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return s;
}

/// One validation handshake against `path` of the public URL: "" when it
/// passed (and `took_ms` says how long it took), else why not.
std::string handshake(const target_url& u, const std::string& path,
                      int64_t& took_ms) {
  http::tls_options tls;
  tls.enabled = u.https;
  http::client c{
      u.host, u.port,
      std::chrono::duration_cast<std::chrono::milliseconds>(handshake_deadline),
      tls};
  auto token = random_token();
  auto target = u.path + path + "?validationToken=" + url_encode(token);
  http::client_response res;
  std::string err;
  auto started = std::chrono::steady_clock::now();
  bool answered = c.request("POST", target, "",
                            {{"Content-Type", "text/plain; charset=utf-8"},
                             {"User-Agent", "crmsyncctl-doctor"}},
                            res, err);
  took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - started)
                .count();
  const std::string what = "POST " + path + "?validationToken=…";
  if (!answered)
    return what + " got no answer: " + err;
  if (took_ms > std::chrono::milliseconds(handshake_deadline).count())
    return what + " took " + std::to_string(took_ms)
           + " ms; Graph waits 10 s at most";
  if (res.status != 200)
    return what + " answered HTTP " + std::to_string(res.status)
           + " instead of 200"
           + (res.body.empty() ? "" : ": " + res.body.substr(0, 200));
  auto type = lower(res.header("content-type"));
  if (type.rfind("text/plain", 0) != 0)
    return what + " answered Content-Type '" + res.header("content-type")
           + "' instead of text/plain";
  if (res.body != token)
    return what + " answered 200 text/plain, but not with the token sent"
           + std::string(res.body.empty()
                             ? " (an empty body)"
                             : " (\"" + res.body.substr(0, 80) + "\")")
           + ": the token must come back URL-decoded and unchanged";
  return {};
}

check webhook_check(const std::string& public_url) {
  check c{"webhook_handshake", "fail", "", ""};
  target_url u;
  std::string err;
  if (!split_public_url(public_url, u, err)) {
    c.message = "the public URL is not usable: " + err;
    c.hint = "start crmsyncd with --public-url https://your.host (where "
             "Microsoft reaches the node), or give doctor --public-url";
    return c;
  }
  int64_t ms_graph = 0, ms_lifecycle = 0;
  auto why = handshake(u, "/webhooks/graph", ms_graph);
  if (why.empty())
    why = handshake(u, "/webhooks/graph/lifecycle", ms_lifecycle);
  if (!why.empty()) {
    c.message = public_url + ": " + why;
    c.hint = "Graph POSTs {public URL}/webhooks/graph?validationToken=… "
             "and needs the token back as text/plain within 10 s: the "
             "public URL must reach crmsyncd from the Internet, and a "
             "reverse proxy must pass /webhooks/ through with its path, "
             "query and body, with no sign-in or authentication in front "
             "(docs/MICROSOFT365.md)";
    return c;
  }
  c.status = u.https ? "pass" : "warn";
  c.message = public_url
              + " answers Graph's validation handshake on "
                "/webhooks/graph ("
              + std::to_string(ms_graph)
              + " ms) and /webhooks/graph/lifecycle ("
              + std::to_string(ms_lifecycle) + " ms)";
  if (!u.https) {
    c.message += ", but it is not https";
    c.hint = "Microsoft Graph sends notifications only to https URLs: put "
             "crmsyncd behind a TLS reverse proxy and start it with "
             "--public-url https://your.host";
  }
  return c;
}

/// Only printable text from the node or a URL reaches the terminal.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char ch : s)
    out += (ch < 0x20 || ch == 0x7f) ? '?' : static_cast<char>(ch);
  return out;
}

int report(const global_options& g, const std::vector<check>& checks) {
  bool ok = true;
  for (auto& c : checks)
    ok = ok && (c.status == "pass" || c.status == "warn");
  if (g.json) {
    std::string out = "{\"ok\":";
    out += ok ? "true" : "false";
    out += ",\"checks\":[";
    for (size_t i = 0; i < checks.size(); ++i) {
      const auto& c = checks[i];
      out += i ? ",{" : "{";
      out += "\"name\":";
      append_json_string(out, c.name);
      out += ",\"status\":";
      append_json_string(out, c.status);
      out += ",\"message\":";
      append_json_string(out, c.message);
      out += ",\"hint\":";
      append_json_string(out, c.hint);
      out += '}';
    }
    out += "]}\n";
    std::cout << out;
  } else {
    size_t counts[4] = {0, 0, 0, 0};
    for (auto& c : checks) {
      std::string tag = c.status == "pass"   ? "PASS"
                        : c.status == "warn" ? "WARN"
                        : c.status == "skip" ? "SKIP"
                                             : "FAIL";
      ++counts[c.status == "pass"   ? 0
               : c.status == "warn" ? 1
               : c.status == "fail" ? 2
                                    : 3];
      std::cout << tag << "  " << c.name << ": " << printable(c.message)
                << '\n';
      if (!c.hint.empty() && c.status != "pass")
        std::cout << "      hint: " << printable(c.hint) << '\n';
    }
    std::cout << counts[0] << " passed, " << counts[1] << " warned, "
              << counts[2] << " failed, " << counts[3] << " skipped\n";
  }
  return ok ? exit_ok : exit_failure;
}

} // namespace

int cmd_doctor(const global_options& g, const doctor_options& d) {
  std::vector<check> checks;
  check node{"node", "fail", "", ""};
  std::string public_url = d.public_url;
  std::string host, err;
  uint16_t port = 0;
  if (!http::parse_base_url(g.node, host, port, err)) {
    std::cerr << "crmsyncctl: bad --node: " << err << '\n';
    return exit_usage;
  }
  // The node runs the checks that need the secret; they wait for the
  // identity platform and Graph, so give them time.
  http::client c{host, port, std::chrono::minutes(3)};
  std::string body = "{}";
  if (!d.tenant.empty()) {
    body = "{\"tenant\":";
    append_json_string(body, d.tenant);
    body += '}';
  }
  http::client_response res;
  bool answered = c.request("POST", "/admin/v1/doctor", body,
                            {{"Authorization", "Bearer " + g.token},
                             {"Content-Type", "application/json"},
                             {"Accept", "application/json"},
                             {"User-Agent", "crmsyncctl"}},
                            res, err);
  dom::parser parser;
  dom::element doc;
  bool got = false;
  if (!answered) {
    node.message = "the node at " + g.node + " does not answer: " + err;
    node.hint = "check --node (the node's --listen address, or its public "
                "URL) and that crmsyncd runs";
  } else if (res.status == 401) {
    node.message = "the node at " + g.node + " refused the admin token (401)";
    node.hint = "pass the service admin token: --token, CRMSYNC_ADMIN_TOKEN "
                "or --token-file (DATA_DIR/admin.token)";
  } else if (res.status == 403) {
    node.message = "the node at " + g.node
                   + " refused the token (403): it is not the service "
                     "admin token";
    node.hint = "pass the service admin token, not a user's token";
  } else if (res.status != 200) {
    auto e = parse_api_error(res.body);
    node.message = "the node at " + g.node + " answered HTTP "
                   + std::to_string(res.status) + " to POST /admin/v1/doctor"
                   + (e.message.empty() ? "" : ": " + e.message)
                   + (e.code.empty() ? "" : " [" + e.code + "]");
    node.hint = res.status == 404 && e.message.rfind("no such route", 0) == 0
                    ? "the node runs an older crmsyncd without doctor"
                    : "see the node's answer";
  } else if (parser.parse(res.body).get(doc) || !doc.is_object()) {
    node.message = "the node's answer to POST /admin/v1/doctor is not JSON";
  } else {
    got = true;
    std::string_view id;
    node.status = "pass";
    node.message
        = "the node at " + g.node
          + (doc["node"].get_string().get(id) ? std::string{}
                                              : " (" + std::string{id} + ")")
          + " answers and accepts the admin token";
  }
  checks.push_back(node);
  if (got) {
    std::string_view sv;
    if (public_url.empty() && !doc["public_url"].get_string().get(sv))
      public_url = std::string{sv};
    dom::array list;
    if (!doc["checks"].get_array().get(list))
      for (dom::element e : list) {
        check k;
        std::string_view name, status, message, hint;
        if (e["name"].get_string().get(name)
            || e["status"].get_string().get(status))
          continue;
        k.name = std::string{name};
        k.status = std::string{status};
        if (!e["message"].get_string().get(message))
          k.message = std::string{message};
        if (!e["hint"].get_string().get(hint))
          k.hint = std::string{hint};
        checks.push_back(std::move(k));
      }
  } else {
    for (const char* name : {"token_endpoint", "tenant_consent"})
      checks.push_back(
          {name, "skip", "not checked: the node did not answer", ""});
  }
  if (public_url.empty())
    checks.push_back({"webhook_handshake", "skip",
                      "not checked: no public URL (the node did not say "
                      "its own)",
                      "give --public-url https://your.host"});
  else
    checks.push_back(webhook_check(public_url));
  return report(g, checks);
}

} // namespace crmsync::ctl
