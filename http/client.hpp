// A small blocking HTTP/1.1 client with one keep-alive connection.
//
// Used by crmsyncctl, the load generator and the end-to-end tests; never from
// inside an actor (it blocks the calling thread). One instance belongs to one
// thread at a time. Beast stays inside client.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace crmsync::http {

using header_list = std::vector<std::pair<std::string, std::string>>;

/// One HTTP response as received.
struct client_response {
  int status = 0;
  std::string body;
  header_list headers;

  /// Returns the first header with this name (case-insensitive), or "".
  std::string header(std::string_view name) const;
};

/// Splits "http://host:port[/prefix]" into host and port. Returns false and
/// fills `err` when the URL is not a plain-HTTP URL with a host.
bool parse_base_url(std::string_view url, std::string& host, uint16_t& port,
                    std::string& err);

/// Transport security of a client connection. Certificates are always
/// verified: against the system's trusted CAs plus `extra_ca_file`, and the
/// certificate must name the host.
struct tls_options {
  bool enabled = false;
  std::string extra_ca_file; ///< PEM; "" = the system store only
  /// Trust the system's CAs too (false: only `extra_ca_file`, as for a
  /// private etcd whose CA is the cluster's own). t15-ops.
  bool system_store = true;
  /// A client certificate (chain) and its key, PEM, offered when the server
  /// asks for one ("" = none). t15-ops.
  std::string cert_file;
  std::string key_file;
};

/// Blocking HTTP/1.1 client over one keep-alive TCP connection.
class client {
public:
  client(std::string host, uint16_t port,
         std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// An HTTPS client when `tls.enabled`.
  client(std::string host, uint16_t port, std::chrono::milliseconds timeout,
         tls_options tls);
  ~client();
  client(client&&) noexcept;
  client& operator=(client&&) noexcept;

  /// Sends one request and reads the answer. Connects lazily and reconnects
  /// once when the server closed an idle keep-alive connection. Returns false
  /// with a human-readable `err` on connect/read/write failure or timeout.
  bool request(std::string_view method, std::string_view target,
               std::string_view body, const header_list& headers,
               client_response& out, std::string& err);

  /// Closes the connection (the next request opens a new one).
  void close();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace crmsync::http
