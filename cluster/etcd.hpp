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

/// Parses "--etcd-endpoints": "http[s]://HOST:PORT[,...]", all of one
/// scheme; false with a sentence.
bool parse_endpoints(const std::string& text, std::vector<std::string>& out,
                     std::string& err);

/// How a client checks etcd and proves itself to it (t15-ops; the flags
/// --etcd-ca-file, --etcd-cert-file, --etcd-key-file, --etcd-user and
/// --etcd-password-file; checked by check_security before use).
struct security {
  /// https endpoints: etcd's CA, the only one trusted for them.
  std::string ca_file;
  /// A client certificate and key for etcd's --client-cert-auth.
  std::string cert_file;
  std::string key_file;
  /// etcd's user/role authentication: the user, and the file holding its
  /// password (read again at each authentication, so a rotated password
  /// is taken without a restart). "" = no authentication.
  std::string user;
  std::string password_file;
};

/// Checks a security setting against the endpoints (https or not) the way
/// the client will use it, in one sentence naming the flag: TLS files with
/// http endpoints, https without a CA, a certificate without its key (or a
/// key that is not the certificate's), files that cannot be read or hold
/// no PEM of their kind, a key or password file others may read, an empty
/// password, a password over plain http.
bool check_security(const std::vector<std::string>& endpoints,
                    const security& sec, std::string& err);

/// The first line of a password file, without its line end; false with a
/// sentence when it cannot be read or is empty.
bool read_password(const std::string& path, std::string& out, std::string& err);

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
  client(std::vector<std::string> endpoints, std::chrono::milliseconds timeout,
         security sec = {});
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

  /// One request on `c`, with the auth token when there is one; a token
  /// etcd no longer takes (expired, revoked, the password changed) is
  /// replaced once. False with `err` when no answer came.
  bool exchange(http::client& c, std::string_view path, const std::string& body,
                int& status, std::string& answer, std::string& err);
  /// /v3/auth/authenticate with the user and the password file's password.
  bool authenticate(http::client& c, std::string& err);

  std::vector<std::string> endpoints_;
  std::chrono::milliseconds timeout_;
  security sec_;
  std::string token_; ///< etcd's auth token (under mtx_); "" = none yet
  std::mutex mtx_;
  std::vector<std::unique_ptr<endpoint>> hosts_;
  size_t preferred_ = 0; ///< the endpoint that answered last
};

} // namespace crmsync::cluster::etcd
