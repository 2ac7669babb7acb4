// Blocking HTTP/1.1 client over one keep-alive plain-TCP connection.
//
// Implements http/client.hpp with Boost.Beast. Each step is started async on a
// private io_context that is run on the calling thread: tcp_stream timeouts
// only apply to async operations. One instance belongs to one thread at a
// time (no internal locking).
#include "http/client.hpp"
#include "http/beast_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <cctype>
#include <optional>

namespace crmsync::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

using beast_client::body_limit;
using beast_client::header_limit;
using beast_client::is_stale_connection_error;
using beast_client::to_beast;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto ca = static_cast<unsigned char>(a[i]);
    auto cb = static_cast<unsigned char>(b[i]);
    if (std::tolower(ca) != std::tolower(cb))
      return false;
  }
  return true;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size()
         && iequals(s.substr(0, prefix.size()), prefix);
}

bool is_host_char(char c) {
  auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '-' || c == '.' || c == '_';
}

std::string to_std(beast::string_view s) {
  return std::string(s.data(), s.size());
}

} // namespace

std::string client_response::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (iequals(key, name))
      return value;
  return {};
}

bool parse_base_url(std::string_view url, std::string& host, uint16_t& port,
                    std::string& err) {
  const std::string shown(url);
  if (starts_with_nocase(url, "https://")) {
    err = "unsupported URL '" + shown
          + "': only http:// is supported by this client (no TLS)";
    return false;
  }
  if (!starts_with_nocase(url, "http://")) {
    err = "invalid URL '" + shown + "': expected http://host[:port]";
    return false;
  }
  std::string_view rest = url.substr(7);
  const auto end_of_authority = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end_of_authority);
  std::string_view path = end_of_authority == std::string_view::npos
                              ? std::string_view{}
                              : rest.substr(end_of_authority);
  if (!path.empty() && path != "/") {
    err = "invalid URL '" + shown
          + "': a path, query or fragment is not supported, expected "
            "http://host[:port][/]";
    return false;
  }
  if (authority.find('@') != std::string_view::npos) {
    err = "invalid URL '" + shown + "': user info is not supported";
    return false;
  }

  std::string_view host_part;
  std::string_view port_part;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    // IPv6 literal: [addr] or [addr]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      err = "invalid URL '" + shown + "': unterminated IPv6 literal";
      return false;
    }
    host_part = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        err = "invalid URL '" + shown + "': junk after IPv6 literal";
        return false;
      }
      has_port = true;
      port_part = after.substr(1);
    }
    for (char c : host_part) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':'
          && c != '.') {
        err = "invalid URL '" + shown + "': bad IPv6 literal";
        return false;
      }
    }
  } else {
    const auto colon = authority.find(':');
    host_part = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_part = authority.substr(colon + 1);
    }
    for (char c : host_part) {
      if (!is_host_char(c)) {
        err = "invalid URL '" + shown + "': bad character in host name";
        return false;
      }
    }
  }
  if (host_part.empty()) {
    err = "invalid URL '" + shown + "': missing host";
    return false;
  }

  unsigned long port_value = 80;
  if (has_port) {
    if (port_part.empty() || port_part.size() > 5) {
      err = "invalid URL '" + shown + "': bad port";
      return false;
    }
    port_value = 0;
    for (char c : port_part) {
      if (!std::isdigit(static_cast<unsigned char>(c))) {
        err = "invalid URL '" + shown + "': bad port";
        return false;
      }
      port_value = port_value * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port_value == 0 || port_value > 65535) {
      err = "invalid URL '" + shown + "': port out of range";
      return false;
    }
  }
  host.assign(host_part);
  port = static_cast<uint16_t>(port_value);
  return true;
}

struct client::impl {
  std::string host_;
  uint16_t port_;
  std::chrono::milliseconds timeout_;
  std::string host_header_;
  asio::io_context ioc_;
  std::optional<beast::tcp_stream> stream_;
  tls_options tls_;
  std::optional<asio::ssl::context> ctx_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure_;

  /// The TCP layer of whichever stream is open.
  beast::tcp_stream& lowest() {
    return secure_ ? beast::get_lowest_layer(*secure_) : *stream_;
  }

  bool connected() const {
    return stream_.has_value() || secure_.has_value();
  }

  /// Calls f with the open stream, plain or TLS.
  template <class F>
  error_code on_stream(F&& f) {
    if (secure_)
      return f(*secure_);
    return f(*stream_);
  }
  beast::flat_buffer buffer_;

  impl(std::string host, uint16_t port, std::chrono::milliseconds timeout,
       tls_options tls)
      : host_(std::move(host))
      , port_(port)
      , timeout_(timeout)
      , tls_(std::move(tls)) {
    const bool v6 = host_.find(':') != std::string::npos;
    host_header_ = v6 ? "[" + host_ + "]" : host_;
    if (port_ != 80)
      host_header_ += ":" + std::to_string(port_);
  }

  std::string where() const {
    return host_header_ + (port_ == 80 ? ":80" : "");
  }

  // Runs the io_context until the operation started by `start` completes.
  template <class Start>
  error_code run(Start&& start) {
    error_code result = asio::error::would_block;
    ioc_.restart();
    start(result);
    ioc_.run();
    return result;
  }

  std::string describe(const char* what, const error_code& ec) const {
    if (ec == beast::error::timeout)
      return std::string(what) + " " + where() + " timed out after "
             + std::to_string(timeout_.count()) + " ms";
    return std::string(what) + " " + where() + " failed: " + ec.message();
  }

  void close() {
    if (connected()) {
      error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest().socket().close(ignored);
      stream_.reset();
      secure_.reset();
    }
    buffer_.clear();
  }

  bool connect(std::string& err) {
    close();
    // Name resolution is synchronous (getaddrinfo cannot be interrupted);
    // the timeout covers connect, write and read.
    tcp::resolver resolver(ioc_);
    error_code ec;
    auto endpoints = resolver.resolve(host_, std::to_string(port_), ec);
    if (ec) {
      err = "cannot resolve '" + host_ + "': " + ec.message();
      return false;
    }
    if (tls_.enabled) {
      if (!tls_context(err))
        return false;
      secure_.emplace(ioc_, *ctx_);
      // The certificate must name the host; SNI only for host names.
      secure_->set_verify_mode(asio::ssl::verify_peer);
      secure_->set_verify_callback(asio::ssl::host_name_verification(host_));
      error_code not_ip;
      asio::ip::make_address(host_, not_ip);
      if (not_ip)
        SSL_set_tlsext_host_name(secure_->native_handle(), host_.c_str());
    } else {
      stream_.emplace(ioc_);
    }
    lowest().expires_after(timeout_);
    ec = run([&](error_code& out) {
      lowest().async_connect(
          endpoints,
          [&out](const error_code& e, const tcp::endpoint&) { out = e; });
    });
    if (ec) {
      err = describe("connect to", ec);
      close();
      return false;
    }
    lowest().socket().set_option(tcp::no_delay(true), ec);
    if (secure_) {
      lowest().expires_after(timeout_);
      ec = run([&](error_code& out) {
        secure_->async_handshake(asio::ssl::stream_base::client,
                                 [&out](const error_code& e) { out = e; });
      });
      if (ec) {
        err = describe("TLS handshake with", ec);
        close();
        return false;
      }
    }
    return true;
  }

  /// The TLS context: the system's trusted CAs plus the configured extra CA.
  bool tls_context(std::string& err) {
    if (ctx_)
      return true;
    ctx_.emplace(asio::ssl::context::tls_client);
    error_code ec;
    ctx_->set_options(
        asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3
        | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (tls_.system_store)
      ctx_->set_default_verify_paths(ec);
    if (!ec && !tls_.extra_ca_file.empty())
      ctx_->load_verify_file(tls_.extra_ca_file, ec);
    if (ec) {
      err = "cannot load trusted certificates"
            + (tls_.extra_ca_file.empty()
                   ? std::string{}
                   : " from '" + tls_.extra_ca_file + "'")
            + ": " + ec.message();
      ctx_.reset();
      return false;
    }
    if (!tls_.cert_file.empty()) {
      ctx_->use_certificate_chain_file(tls_.cert_file, ec);
      if (!ec)
        ctx_->use_private_key_file(tls_.key_file, asio::ssl::context::pem, ec);
      if (ec) {
        err = "cannot load the client certificate '" + tls_.cert_file
              + "' and key '" + tls_.key_file + "': " + ec.message();
        ctx_.reset();
        return false;
      }
    }
    return true;
  }

  enum class outcome { ok, failed, retry };

  outcome exchange(bhttp::request<bhttp::string_body>& req, bool reused,
                   client_response& out, std::string& err) {
    lowest().expires_after(timeout_);
    error_code ec = on_stream([&](auto& stream) {
      return run([&](error_code& result) {
        bhttp::async_write(
            stream, req,
            [&result](const error_code& e, std::size_t) { result = e; });
      });
    });
    if (ec) {
      close();
      if (reused && ec != beast::error::timeout)
        return outcome::retry;
      err = describe("sending request to", ec);
      return outcome::failed;
    }

    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(body_limit);
    parser.header_limit(header_limit);
    if (req.method() == bhttp::verb::head)
      parser.skip(true);
    // Header first, then the body: Beast 1.74 in eager mode (what async_read
    // uses) does not stop at the body limit for a Content-Length response,
    // reading the header alone does. One deadline covers both reads.
    lowest().expires_after(timeout_);
    ec = on_stream([&](auto& stream) {
      return run([&](error_code& result) {
        bhttp::async_read_header(
            stream, buffer_, parser,
            [&result](const error_code& e, std::size_t) { result = e; });
      });
    });
    if (!ec && !parser.is_done()) {
      ec = on_stream([&](auto& stream) {
        return run([&](error_code& result) {
          bhttp::async_read(
              stream, buffer_, parser,
              [&result](const error_code& e, std::size_t) { result = e; });
        });
      });
    }
    if (ec) {
      const bool nothing_received = !parser.got_some() && buffer_.size() == 0;
      close();
      if (reused && nothing_received && is_stale_connection_error(ec))
        return outcome::retry;
      err = describe("reading response from", ec);
      return outcome::failed;
    }

    auto res = parser.release();
    out.status = static_cast<int>(res.result_int());
    out.headers.clear();
    for (const auto& field : res)
      out.headers.emplace_back(to_std(field.name_string()),
                               to_std(field.value()));
    out.body = std::move(res.body());
    if (!res.keep_alive() || !req.keep_alive())
      close();
    return outcome::ok;
  }

  bool request(std::string_view method, std::string_view target,
               std::string_view body, const header_list& headers,
               client_response& out, std::string& err) {
    out = client_response{};
    if (method.empty() || target.empty()) {
      err = "invalid request: empty method or target";
      return false;
    }
    bhttp::request<bhttp::string_body> req;
    req.version(11);
    const auto verb = bhttp::string_to_verb(to_beast(method));
    if (verb == bhttp::verb::unknown)
      req.method_string(to_beast(method));
    else
      req.method(verb);
    req.target(to_beast(target));
    req.set(bhttp::field::host, host_header_);
    req.set(bhttp::field::user_agent, "crmsync-client");
    bool has_content_type = false;
    for (const auto& [name, value] : headers) {
      if (iequals(name, "content-length") || iequals(name, "transfer-encoding"))
        continue; // framing is ours
      if (iequals(name, "content-type"))
        has_content_type = true;
      req.set(to_beast(name), value);
    }
    if (!body.empty() && !has_content_type)
      req.set(bhttp::field::content_type, "application/json");
    if (req.method() == bhttp::verb::trace && !body.empty()) {
      err = "invalid request: TRACE must not carry a body";
      return false;
    }
    req.body().assign(body.data(), body.size());
    req.prepare_payload();

    // At most two attempts: the second only when a reused connection turned
    // out to be closed by the server before it sent anything.
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = connected();
      if (!reused && !connect(err))
        return false;
      switch (exchange(req, reused && attempt == 0, out, err)) {
        case outcome::ok:
          return true;
        case outcome::failed:
          return false;
        case outcome::retry:
          break;
      }
    }
    err = "request to " + where() + " failed after reconnect";
    return false;
  }
};

client::client(std::string host, uint16_t port,
               std::chrono::milliseconds timeout)
    : client(std::move(host), port, timeout, tls_options{}) {}

client::client(std::string host, uint16_t port,
               std::chrono::milliseconds timeout, tls_options tls)
    : impl_(std::make_unique<impl>(std::move(host), port, timeout,
                                   std::move(tls))) {}

client::~client() = default;
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;

bool client::request(std::string_view method, std::string_view target,
                     std::string_view body, const header_list& headers,
                     client_response& out, std::string& err) {
  if (!impl_) {
    err = "http client used after move";
    return false;
  }
  return impl_->request(method, target, body, headers, out, err);
}

void client::close() {
  if (impl_)
    impl_->close();
}

} // namespace crmsync::http
