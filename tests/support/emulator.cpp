#include "tests/support/emulator.hpp"

#include <catch2/catch.hpp>
#include <openssl/crypto.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "common/crypto.hpp"
#include "emulator/service.hpp"
#include "http/server.hpp"
#include "http/url.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/temp_dir.hpp"

#ifndef GRAPH_EMULATOR_PATH
#error "GRAPH_EMULATOR_PATH must name the graph-emulator binary under test"
#endif

namespace crmsync::test {

using e2e::api_response;

namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void run(const std::string& command) {
  if (std::system(command.c_str()) != 0)
    throw std::runtime_error("failed: " + command);
}

/// A CA and a certificate for localhost / 127.0.0.1 signed by it.
void make_certificates(const std::string& dir) {
  {
    std::ofstream ext{dir + "/server.ext"};
    ext << "basicConstraints=critical,CA:FALSE\n"
           "keyUsage=critical,digitalSignature,keyEncipherment\n"
           "extendedKeyUsage=serverAuth\n"
           "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  }
  const std::string quiet = " 2>/dev/null >/dev/null";
  run("cd " + dir
      + " && openssl req -x509 -newkey ec -pkeyopt "
        "ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem "
        "-days 2 -subj '/CN=crmsync graph test CA' "
        "-addext 'basicConstraints=critical,CA:TRUE' "
        "-addext 'keyUsage=critical,keyCertSign,cRLSign'"
      + quiet);
  run("cd " + dir
      + " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -keyout server.key -out server.csr -subj '/CN=localhost'"
      + quiet);
  run("cd " + dir
      + " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -days 2 -extfile server.ext -out server.pem"
      + quiet);
}

std::unique_ptr<http::server> start_server(crmsync::emulator::service& svc,
                                           size_t threads,
                                           std::string cert = {},
                                           std::string key = {}) {
  http::server_config sc;
  sc.host = "127.0.0.1";
  sc.port = 0;
  sc.threads = threads;
  sc.tls_cert_file = std::move(cert);
  sc.tls_key_file = std::move(key);
  auto s = std::make_unique<http::server>(
      sc, [&svc](http::request&& req, http::responder_ptr r) {
        svc.handle(std::move(req), std::move(r));
      });
  std::string err;
  if (!s->start(err))
    throw std::runtime_error("cannot start the emulator: " + err);
  return s;
}

/// The child's command line: the service settings that differ from the
/// binary's defaults as flags, then the extra arguments.
std::vector<std::string> child_argv(const emulator_options& opts) {
  const emulator_options defaults;
  std::vector<std::string> argv{GRAPH_EMULATOR_PATH, "--listen", "127.0.0.1:0"};
  auto flag = [&argv](const char* name, auto value) {
    argv.emplace_back(name);
    argv.push_back(std::to_string(value));
  };
  if (opts.token_lifetime != defaults.token_lifetime)
    flag("--token-lifetime", opts.token_lifetime.count());
  if (opts.mailbox_requests_per_window != defaults.mailbox_requests_per_window)
    flag("--mailbox-limit", opts.mailbox_requests_per_window);
  if (opts.mailbox_window != defaults.mailbox_window)
    flag("--mailbox-window", opts.mailbox_window.count());
  if (opts.threads != defaults.threads)
    flag("--threads", opts.threads);
  argv.insert(argv.end(), opts.extra_args.begin(), opts.extra_args.end());
  return argv;
}

void check_child_options(const emulator_options& opts) {
  const emulator_options defaults;
  if (opts.clock != defaults.clock || opts.tls || opts.shared
      || opts.change_log_floor != defaults.change_log_floor)
    throw std::logic_error("a graph-emulator child takes no clock, TLS, "
                           "sharing or change-log floor");
  if (opts.log_file.empty())
    throw std::logic_error("a graph-emulator child needs a log_file");
}

} // namespace

int64_t start_ms() {
  return 1795701600000; // 2026-11-26T14:00:00Z
}

std::string
form(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (auto& [k, v] : fields) {
    if (!out.empty())
      out += '&';
    out += http::percent_encode(k) + "=" + http::percent_encode(v);
  }
  return out;
}

std::string client_credentials(std::string_view client_id,
                               std::string_view secret) {
  return form({{"client_id", std::string{client_id}},
               {"client_secret", std::string{secret}},
               {"scope", "https://graph.microsoft.com/.default"},
               {"grant_type", "client_credentials"}});
}

// -- the clock
// -------------------------------------------------------------------

test_clock::test_clock(mode m) : mode_(m) {
  reset();
}

int64_t test_clock::now() const {
  auto elapsed
      = mode_ == mode::running ? steady_ms() - started_steady_ms_ : int64_t{0};
  return start_ms() + elapsed + offset_ms_;
}

void test_clock::advance(std::chrono::milliseconds d) {
  offset_ms_ += d.count();
}

void test_clock::reset() {
  started_steady_ms_ = steady_ms();
  offset_ms_ = 0;
}

// -- in process
// ------------------------------------------------------------------

/// A service with its listeners and clock.
struct emulator::in_process {
  explicit in_process(const emulator_options& opts)
      : clock(std::make_shared<test_clock>(opts.clock)) {
    crmsync::emulator::service_config cfg;
    cfg.token_lifetime = opts.token_lifetime;
    cfg.mailbox_requests_per_window = opts.mailbox_requests_per_window;
    cfg.mailbox_window = opts.mailbox_window;
    cfg.change_log_floor = opts.change_log_floor;
    cfg.now_ms = [c = clock] {
      return c->now();
    };
    service = std::make_unique<crmsync::emulator::service>(std::move(cfg));
    server = start_server(*service, opts.threads);
    if (opts.tls) {
      dir = std::make_unique<temp_dir>();
      make_certificates(dir->path());
      tls_server
          = start_server(*service, opts.threads, dir->path() + "/server.pem",
                         dir->path() + "/server.key");
    }
  }

  ~in_process() {
    // The service before the servers: its delay line sends the answers it
    // still holds (latency injected) to responders of the servers'
    // sessions, which must still exist then.
    if (tls_server)
      tls_server->stop();
    server->stop();
    service.reset();
  }

  in_process(const in_process&) = delete;
  in_process& operator=(const in_process&) = delete;

  /// One service per configuration for the whole process.
  static std::shared_ptr<in_process> shared(const emulator_options& opts) {
    using key = std::tuple<int64_t, size_t, int64_t, size_t, test_clock::mode,
                           size_t, bool>;
    static std::mutex mtx;
    static std::map<key, std::shared_ptr<in_process>> pool;
    std::lock_guard<std::mutex> guard{mtx};
    auto& slot = pool[key{opts.token_lifetime.count(),
                          opts.mailbox_requests_per_window,
                          opts.mailbox_window.count(), opts.threads, opts.clock,
                          opts.change_log_floor, opts.tls}];
    if (!slot)
      slot = std::make_shared<in_process>(opts);
    return slot;
  }

  std::shared_ptr<test_clock> clock;
  std::unique_ptr<temp_dir> dir; ///< the TLS certificates
  std::unique_ptr<crmsync::emulator::service> service;
  std::unique_ptr<http::server> server;
  std::unique_ptr<http::server> tls_server;
};

namespace {

void start_libraries() {
  // OpenSSL registers its exit-time cleanup when first used; doing that
  // before the pool of shared services exists makes the cleanup run after
  // the pool's destructor, which still frees the services' keys.
  static const bool ready
      = crypto::init() && OPENSSL_init_crypto(0, nullptr) == 1;
  if (!ready)
    throw std::runtime_error("libsodium or OpenSSL failed to start");
}

} // namespace

// -- the fixture
// -----------------------------------------------------------------

emulator::emulator() = default;

emulator::emulator(const emulator_options& opts) {
  start(opts);
}

emulator::~emulator() {
  client_.reset();
  if (child_ && child_->pid() > 0)
    child_->stop(std::chrono::seconds(5));
}

void emulator::start(const emulator_options& opts) {
  if (in_process_ || child_)
    throw std::logic_error("emulator::start: already started");
  if (opts.mode == emulator_mode::child_process) {
    check_child_options(opts);
    e2e::child_options child;
    child.argv = child_argv(opts);
    child.log_file = opts.log_file;
    // The emulator reads GRAPH_EMULATOR_* from the environment.
    child.drop_env_prefix = "GRAPH_EMULATOR_";
    child.name = "graph-emulator";
    child.log_label = "emulator";
    child.start_timeout = opts.start_timeout;
    child_ = std::make_unique<e2e::child_process>();
    child_->start(child);
  } else {
    start_libraries();
    if (opts.shared) {
      in_process_ = in_process::shared(opts);
      in_process_->clock->reset();
    } else {
      in_process_ = std::make_shared<in_process>(opts);
    }
  }
  client_ = std::make_unique<http::client>("127.0.0.1", port());
  if (opts.shared) {
    auto r = send("POST", "/_emulator/reset");
    if (r.status != 204)
      throw std::runtime_error("cannot reset the emulator: " + r.describe());
  }
}

int emulator::stop(std::chrono::milliseconds timeout) {
  client_.reset();
  in_process_.reset();
  if (!child_)
    return 0;
  return child_->stop(timeout);
}

bool emulator::running() {
  return in_process_ || (child_ && child_->running());
}

void emulator::require_started() const {
  if (!client_)
    throw std::logic_error("the emulator is not running");
}

uint16_t emulator::port() const {
  if (in_process_)
    return in_process_->server->port();
  return child_ ? child_->port() : 0;
}

std::string emulator::origin() const {
  return "http://127.0.0.1:" + std::to_string(port());
}

std::string emulator::tls_origin() const {
  if (!in_process_ || !in_process_->tls_server)
    throw std::logic_error("this emulator serves no HTTPS");
  return "https://localhost:" + std::to_string(in_process_->tls_server->port());
}

std::string emulator::ca_file() const {
  if (!in_process_ || !in_process_->dir)
    throw std::logic_error("this emulator serves no HTTPS");
  return in_process_->dir->path() + "/ca.pem";
}

std::string emulator::log_tail(size_t max_bytes) const {
  return child_ ? child_->log_tail(max_bytes) : std::string{};
}

// -- the clock
// -------------------------------------------------------------------

int64_t emulator::now() const {
  if (!in_process_)
    throw std::logic_error("only an in-process emulator has a test clock");
  return in_process_->clock->now();
}

void emulator::advance(std::chrono::milliseconds d) {
  if (!in_process_)
    throw std::logic_error("only an in-process emulator has a test clock");
  in_process_->clock->advance(d);
}

std::function<int64_t()> emulator::clock() const {
  if (!in_process_)
    throw std::logic_error("only an in-process emulator has a test clock");
  return [c = in_process_->clock] {
    return c->now();
  };
}

// -- requests
// --------------------------------------------------------------------

api_response emulator::send(std::string_view method, std::string_view target,
                            std::string_view body,
                            const http::header_list& headers) {
  require_started();
  http::client_response out;
  std::string err;
  if (!client_->request(method, target, body, headers, out, err))
    throw std::runtime_error(std::string{method} + " " + std::string{target}
                             + ": " + err);
  return api_response{std::move(out)};
}

api_response emulator::graph(std::string_view method, std::string_view target,
                             std::string_view token, std::string_view body,
                             http::header_list headers) {
  if (!token.empty())
    headers.emplace_back("Authorization", "Bearer " + std::string{token});
  return send(method, target, body, headers);
}

api_response emulator::get(std::string_view target, std::string_view token) {
  return graph("GET", target, token);
}

api_response emulator::post(std::string_view target, std::string_view token,
                            std::string_view body) {
  return graph("POST", target, token, body);
}

api_response emulator::patch(std::string_view target, std::string_view token,
                             std::string_view body, std::string_view if_match) {
  http::header_list h;
  if (!if_match.empty())
    h.emplace_back("If-Match", std::string{if_match});
  return graph("PATCH", target, token, body, h);
}

api_response emulator::del(std::string_view target, std::string_view token,
                           std::string_view if_match) {
  http::header_list h;
  if (!if_match.empty())
    h.emplace_back("If-Match", std::string{if_match});
  return graph("DELETE", target, token, {}, h);
}

api_response emulator::request_token(std::string_view tenant,
                                     std::string_view form_body) {
  return send("POST", "/" + std::string{tenant} + "/oauth2/v2.0/token",
              form_body,
              {{"Content-Type", "application/x-www-form-urlencoded"}});
}

std::string emulator::token(std::string_view tenant, std::string_view client_id,
                            std::string_view secret) {
  auto r = request_token(tenant, client_credentials(client_id, secret));
  E2E_REQUIRE_STATUS(r, 200);
  return r.str("/access_token");
}

// -- the control API
// -------------------------------------------------------------

api_response emulator::seed_tenant(std::string_view body) {
  auto r = send("POST", "/_emulator/tenants", body);
  E2E_REQUIRE_STATUS(r, 201);
  return r;
}

void emulator::seed_app(std::string_view client_id, std::string_view secret,
                        std::string_view tenants_json) {
  auto r = send("POST", "/_emulator/apps",
                R"({"client_id":")" + std::string{client_id}
                    + R"(","client_secret":")" + std::string{secret}
                    + R"(","tenants":)" + std::string{tenants_json} + "}");
  E2E_REQUIRE_STATUS(r, 201);
}

api_response emulator::state() {
  auto r = send("GET", "/_emulator/state");
  E2E_REQUIRE_STATUS(r, 200);
  return r;
}

void emulator::faults(std::string_view json) {
  auto r = send("POST", "/_emulator/faults", json);
  if (r.status != 200)
    throw std::runtime_error("faults refused: " + r.describe());
}

// -- links
// -----------------------------------------------------------------------

std::vector<api_response> emulator::walk(std::string_view first,
                                         std::string_view token,
                                         size_t max_pages) {
  std::vector<api_response> pages;
  std::string target{first};
  for (;;) {
    auto page = get(target, token);
    E2E_REQUIRE_STATUS(page, 200);
    pages.push_back(page);
    if (!page.has("/@odata.nextLink"))
      return pages;
    REQUIRE(pages.size() < max_pages);
    target = target_of(page.str("/@odata.nextLink"));
  }
}

std::string emulator::target_of(std::string_view link) const {
  INFO("link " << link);
  REQUIRE(link.substr(0, origin().size() + 1) == origin() + "/");
  return std::string{link.substr(origin().size())};
}

} // namespace crmsync::test
