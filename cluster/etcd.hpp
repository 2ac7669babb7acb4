// A client of etcd's v3 API through its JSON gateway (ADR 0007): leases,
// ranges, puts and transactions as JSON POSTs over the project's blocking
// HTTP client, keys and values base64 on the wire.
//
// Thread-safe: each call takes an idle connection (or opens one) and gives
// it back, so callers on several threads do not wait for each other. Calls
// block the calling thread for at most the timeout per endpoint tried;
// never call from an actor that must stay responsive. An endpoint that
// fails is left for the next one in the list.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace crmsync::http {
class client;
}

namespace crmsync::cluster::etcd {

/// Parses "--etcd-endpoints": "http://HOST:PORT[,http://HOST:PORT...]";
/// false with a sentence (TLS endpoints are refused: not supported yet).
bool parse_endpoints(const std::string& text, std::vector<std::string>& out,
                     std::string& err);

/// Standard base64 (with padding), as etcd's gateway wants bytes.
std::string base64(std::string_view bytes);
/// False when `text` is not standard base64.
bool unbase64(std::string_view text, std::string& out);

/// The end of the key range of every key starting with `prefix`.
std::string prefix_end(std::string_view prefix);

struct key_value {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

struct range_result {
  int64_t revision = 0; ///< the store's revision when read
  std::vector<key_value> kvs;
};

/// One comparison of a transaction (all must hold for its success branch).
struct compare {
  enum class target { create, mod, value };
  target what = target::create;
  std::string key;
  int64_t revision = 0;
  std::string value;

  /// The key does not exist (its create revision is 0).
  static compare absent(std::string key);
  /// The key was last written at `rev` (0: it does not exist).
  static compare mod_is(std::string key, int64_t rev);
  static compare value_is(std::string key, std::string value);
};

/// One operation of a transaction branch.
struct operation {
  enum class kind { put, del, get };
  kind what = kind::get;
  std::string key;
  std::string value;
  int64_t lease = 0;

  static operation put(std::string key, std::string value, int64_t lease = 0);
  static operation del(std::string key);
  static operation get(std::string key);
};

struct txn_result {
  bool succeeded = false;
  int64_t revision = 0;
  /// What each get of the branch that ran found, in order.
  std::vector<std::vector<key_value>> gets;
};

class client {
public:
  client(std::vector<std::string> endpoints, std::chrono::milliseconds timeout);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// A lease of `ttl_seconds`; its id.
  caf::expected<int64_t> grant(int64_t ttl_seconds);
  /// Refreshes a lease; its remaining TTL in seconds, 0 when it expired.
  caf::expected<int64_t> keep_alive(int64_t lease);
  caf::error revoke(int64_t lease);

  /// One key, or every key starting with it when `prefix`.
  caf::expected<range_result> range(const std::string& key,
                                    bool prefix = false);
  caf::error put(const std::string& key, const std::string& value,
                 int64_t lease = 0);
  caf::expected<txn_result> txn(const std::vector<compare>& compares,
                                const std::vector<operation>& success,
                                const std::vector<operation>& failure = {});

  const std::vector<std::string>& endpoints() const {
    return endpoints_;
  }

private:
  struct endpoint;
  /// POSTs `body` to `path` on the first endpoint that answers; the
  /// answer's body, or why none did.
  caf::expected<std::string> post(std::string_view path,
                                  const std::string& body);

  std::vector<std::string> endpoints_;
  std::chrono::milliseconds timeout_;
  std::mutex mtx_;
  std::vector<std::unique_ptr<endpoint>> hosts_;
  size_t preferred_ = 0; ///< the endpoint that answered last
};

} // namespace crmsync::cluster::etcd
