#include "cluster/etcd.hpp"

#include <simdjson.h>

#include "http/client.hpp"
#include "protocol/errors.hpp"
#include "protocol/json.hpp"

namespace crmsync::cluster::etcd {

namespace {

constexpr char alphabet[]
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

caf::error unreachable(const std::string& why) {
  return make_crm_error(crm_errc::unavailable, "coordination_unavailable",
                        "the cluster's coordination store (etcd) cannot be "
                        "reached; retry ("
                            + why + ")");
}

/// etcd's gateway writes 64-bit numbers as strings and leaves zeros out.
int64_t number(simdjson::dom::element parent, std::string_view field) {
  simdjson::dom::element e;
  if (parent[field].get(e))
    return 0;
  std::string_view text;
  if (!e.get_string().get(text)) {
    try {
      return std::stoll(std::string{text});
    } catch (...) {
      return 0;
    }
  }
  int64_t n = 0;
  if (!e.get_int64().get(n))
    return n;
  return 0;
}

std::string bytes_of(simdjson::dom::element parent, std::string_view field) {
  std::string_view text;
  std::string out;
  if (!parent[field].get_string().get(text))
    unbase64(text, out);
  return out;
}

std::vector<key_value> kvs_of(simdjson::dom::element parent) {
  std::vector<key_value> out;
  simdjson::dom::array kvs;
  if (parent["kvs"].get_array().get(kvs))
    return out;
  for (auto kv : kvs) {
    key_value x;
    x.key = bytes_of(kv, "key");
    x.value = bytes_of(kv, "value");
    x.create_revision = number(kv, "create_revision");
    x.mod_revision = number(kv, "mod_revision");
    x.lease = number(kv, "lease");
    out.push_back(std::move(x));
  }
  return out;
}

void write_operation(json::writer& w, const operation& op) {
  w.begin_object();
  switch (op.what) {
    case operation::kind::put:
      w.key("request_put").begin_object();
      w.key("key").value(base64(op.key));
      w.key("value").value(base64(op.value));
      if (op.lease != 0)
        w.key("lease").value(std::to_string(op.lease));
      w.end_object();
      break;
    case operation::kind::del:
      w.key("request_delete_range").begin_object();
      w.key("key").value(base64(op.key));
      w.end_object();
      break;
    case operation::kind::get:
      w.key("request_range").begin_object();
      w.key("key").value(base64(op.key));
      w.end_object();
      break;
  }
  w.end_object();
}

} // namespace

bool parse_endpoints(const std::string& text, std::vector<std::string>& out,
                     std::string& err) {
  out.clear();
  size_t start = 0;
  std::string scheme;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    auto item = text.substr(
        start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!item.empty() && item.back() == '/')
      item.pop_back();
    // https is spoken with --etcd-ca-file (check_security); the URL
    // parser knows http only.
    bool tls = item.rfind("https://", 0) == 0;
    auto plain = tls ? "http://" + item.substr(8) : item;
    std::string host;
    uint16_t port = 0;
    if (!http::parse_base_url(plain, host, port, err) || port == 0) {
      err = "--etcd-endpoints: '" + item + "' is not http[s]://HOST:PORT";
      return false;
    }
    auto this_scheme = tls ? std::string{"https://"} : std::string{"http://"};
    if (!scheme.empty() && scheme != this_scheme) {
      err = "--etcd-endpoints: mixes http:// and https:// endpoints; all "
            "of one cluster's endpoints are one or the other";
      return false;
    }
    scheme = this_scheme;
    auto shown_host
        = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    out.push_back(scheme + shown_host + ":" + std::to_string(port));
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  if (out.empty()) {
    err = "--etcd-endpoints: no endpoint";
    return false;
  }
  return true;
}

std::string base64(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint32_t{static_cast<uint8_t>(bytes[i])} << 16)
                 | (uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8)
                 | uint32_t{static_cast<uint8_t>(bytes[i + 2])};
    for (int shift = 18; shift >= 0; shift -= 6)
      out += alphabet[(n >> shift) & 63];
  }
  auto rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t n = uint32_t{static_cast<uint8_t>(bytes[i])} << 16;
    if (rest == 2)
      n |= uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool unbase64(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() % 4 != 0)
    return false;
  uint32_t n = 0;
  int bits = 0;
  size_t pad = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    int v = -1;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=' && i + 2 >= text.size()) {
      ++pad;
      continue;
    }
    if (v < 0 || pad > 0)
      return false;
    n = (n << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((n >> bits) & 0xff);
    }
  }
  return true;
}

std::string prefix_end(std::string_view prefix) {
  std::string end{prefix};
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0'); // every key
}

compare compare::absent(std::string key) {
  compare c;
  c.what = target::create;
  c.key = std::move(key);
  return c;
}

compare compare::mod_is(std::string key, int64_t rev) {
  compare c;
  c.what = target::mod;
  c.key = std::move(key);
  c.revision = rev;
  return c;
}

compare compare::value_is(std::string key, std::string value) {
  compare c;
  c.what = target::value;
  c.key = std::move(key);
  c.value = std::move(value);
  return c;
}

operation operation::put(std::string key, std::string value, int64_t lease) {
  return {kind::put, std::move(key), std::move(value), lease};
}

operation operation::del(std::string key) {
  return {kind::del, std::move(key), {}, 0};
}

operation operation::get(std::string key) {
  return {kind::get, std::move(key), {}, 0};
}

struct client::endpoint {
  std::string host;
  uint16_t port = 0;
  http::tls_options tls;
  std::vector<std::unique_ptr<http::client>> idle;
};

client::client(std::vector<std::string> endpoints,
               std::chrono::milliseconds timeout, security sec)
    : endpoints_(std::move(endpoints))
    , timeout_(timeout)
    , sec_(std::move(sec)) {
  for (auto& url : endpoints_) {
    auto e = std::make_unique<endpoint>();
    std::string err;
    bool tls = url.rfind("https://", 0) == 0;
    http::parse_base_url(tls ? "http://" + url.substr(8) : url, e->host,
                         e->port, err);
    if (tls) {
      // etcd's own CA only: a certificate some public CA issued for the
      // name is not etcd's.
      e->tls.enabled = true;
      e->tls.system_store = sec_.ca_file.empty();
      e->tls.extra_ca_file = sec_.ca_file;
      e->tls.cert_file = sec_.cert_file;
      e->tls.key_file = sec_.key_file;
    }
    hosts_.push_back(std::move(e));
  }
}

bool client::authenticate(http::client& c, std::string& err) {
  std::string password;
  if (!read_password(sec_.password_file, password, err))
    return false;
  json::writer w;
  w.begin_object();
  w.key("name").value(sec_.user);
  w.key("password").value(password);
  w.end_object();
  http::client_response res;
  if (!c.request("POST", "/v3/auth/authenticate", w.str(),
                 {{"Content-Type", "application/json"}}, res, err))
    return false;
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  std::string_view token;
  if (res.status != 200 || p.parse(res.body).get(doc)
      || doc["token"].get_string().get(token) || token.empty()) {
    err = "etcd refused to authenticate user '" + sec_.user
          + "' (--etcd-user, --etcd-password-file): "
          + std::to_string(res.status) + " " + res.body.substr(0, 200);
    return false;
  }
  std::lock_guard<std::mutex> guard{mtx_};
  token_ = std::string{token};
  return true;
}

bool client::exchange(http::client& c, std::string_view path,
                      const std::string& body, int& status, std::string& answer,
                      std::string& err) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    http::header_list headers{{"Content-Type", "application/json"}};
    if (!sec_.user.empty()) {
      std::string token;
      {
        std::lock_guard<std::mutex> guard{mtx_};
        token = token_;
      }
      if (token.empty()) {
        if (!authenticate(c, err))
          return false;
        std::lock_guard<std::mutex> guard{mtx_};
        token = token_;
      }
      headers.emplace_back("Authorization", token);
      http::client_response res;
      if (!c.request("POST", path, body, headers, res, err))
        return false;
      // etcd answers a token it does not know (expired, or dropped when
      // the user's password changed) with 401: authenticate again once.
      if (res.status == 401 && attempt == 0) {
        std::lock_guard<std::mutex> guard{mtx_};
        if (token_ == token)
          token_.clear();
        continue;
      }
      status = res.status;
      answer = std::move(res.body);
      return true;
    }
    http::client_response res;
    if (!c.request("POST", path, body, headers, res, err))
      return false;
    status = res.status;
    answer = std::move(res.body);
    return true;
  }
  err = "etcd kept refusing the auth token";
  return false;
}

client::~client() = default;

caf::expected<std::string> client::post(std::string_view path,
                                        const std::string& body) {
  std::string last_err = "no endpoint";
  size_t first = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    first = preferred_;
  }
  for (size_t n = 0; n < hosts_.size(); ++n) {
    size_t i = (first + n) % hosts_.size();
    auto& e = *hosts_[i];
    std::unique_ptr<http::client> c;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (!e.idle.empty()) {
        c = std::move(e.idle.back());
        e.idle.pop_back();
      }
    }
    if (!c)
      c = std::make_unique<http::client>(e.host, e.port, timeout_, e.tls);
    int status = 0;
    std::string answer;
    std::string err;
    if (!exchange(*c, path, body, status, answer, err)) {
      last_err = endpoints_[i] + ": " + err;
      continue;
    }
    if (status != 200) {
      // etcd answers its own errors (no leader, a lease it does not
      // know) with a status and {"error": ...}: another member may do.
      last_err = endpoints_[i] + " answered " + std::to_string(status) + ": "
                 + answer.substr(0, 200);
      continue;
    }
    std::lock_guard<std::mutex> guard{mtx_};
    preferred_ = i;
    if (e.idle.size() < 8)
      e.idle.push_back(std::move(c));
    return answer;
  }
  return unreachable(last_err);
}

caf::expected<int64_t> client::grant(int64_t ttl_seconds) {
  auto body = post("/v3/lease/grant",
                   "{\"TTL\":\"" + std::to_string(ttl_seconds) + "\"}");
  if (!body)
    return body.error();
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  if (p.parse(*body).get(doc))
    return unreachable("a lease grant answer that does not parse");
  auto id = number(doc, "ID");
  if (id == 0)
    return unreachable("no lease granted: " + body->substr(0, 200));
  return id;
}

caf::expected<int64_t> client::keep_alive(int64_t lease) {
  auto body = post("/v3/lease/keepalive",
                   "{\"ID\":\"" + std::to_string(lease) + "\"}");
  if (!body)
    return body.error();
  // A stream of results; one request, one result.
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  simdjson::dom::element result;
  auto end = body->find('\n');
  if (p.parse(body->substr(0, end)).get(doc) || doc["result"].get(result))
    return unreachable("a keep-alive answer that does not parse");
  return number(result, "TTL");
}

caf::error client::revoke(int64_t lease) {
  auto body
      = post("/v3/lease/revoke", "{\"ID\":\"" + std::to_string(lease) + "\"}");
  return body ? caf::none : body.error();
}

caf::expected<range_result> client::range(const std::string& key, bool prefix) {
  json::writer w;
  w.begin_object().key("key").value(base64(key));
  if (prefix)
    w.key("range_end").value(base64(prefix_end(key)));
  w.end_object();
  auto body = post("/v3/kv/range", w.str());
  if (!body)
    return body.error();
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  simdjson::dom::element header;
  if (p.parse(*body).get(doc) || doc["header"].get(header))
    return unreachable("a range answer that does not parse");
  range_result out;
  out.revision = number(header, "revision");
  out.kvs = kvs_of(doc);
  return out;
}

caf::error client::put(const std::string& key, const std::string& value,
                       int64_t lease) {
  json::writer w;
  w.begin_object();
  w.key("key").value(base64(key));
  w.key("value").value(base64(value));
  if (lease != 0)
    w.key("lease").value(std::to_string(lease));
  w.end_object();
  auto body = post("/v3/kv/put", w.str());
  return body ? caf::none : body.error();
}

caf::expected<txn_result> client::txn(const std::vector<compare>& compares,
                                      const std::vector<operation>& success,
                                      const std::vector<operation>& failure) {
  json::writer w;
  w.begin_object();
  w.key("compare").begin_array();
  for (auto& c : compares) {
    w.begin_object();
    w.key("key").value(base64(c.key));
    w.key("result").value("EQUAL");
    switch (c.what) {
      case compare::target::create:
        w.key("target").value("CREATE");
        w.key("create_revision").value("0");
        break;
      case compare::target::mod:
        w.key("target").value("MOD");
        w.key("mod_revision").value(std::to_string(c.revision));
        break;
      case compare::target::value:
        w.key("target").value("VALUE");
        w.key("value").value(base64(c.value));
        break;
    }
    w.end_object();
  }
  w.end_array();
  for (auto [name, ops] :
       {std::pair{"success", &success}, std::pair{"failure", &failure}}) {
    w.key(name).begin_array();
    for (auto& op : *ops)
      write_operation(w, op);
    w.end_array();
  }
  w.end_object();
  auto body = post("/v3/kv/txn", w.str());
  if (!body)
    return body.error();
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  simdjson::dom::element header;
  if (p.parse(*body).get(doc) || doc["header"].get(header))
    return unreachable("a transaction answer that does not parse");
  txn_result out;
  out.revision = number(header, "revision");
  bool ok = false;
  out.succeeded = !doc["succeeded"].get_bool().get(ok) && ok;
  simdjson::dom::array responses;
  if (!doc["responses"].get_array().get(responses))
    for (auto r : responses) {
      simdjson::dom::element range;
      if (!r["response_range"].get(range))
        out.gets.push_back(kvs_of(range));
    }
  return out;
}

} // namespace crmsync::cluster::etcd
