// graph-emulator: a stateful stand-in for Microsoft Graph v1.0 and the
// identity platform, for tests, demos and benchmarks on machines that
// cannot reach Microsoft. Serves until SIGTERM/SIGINT.
#include <cstdio>
#include <iostream>
#include <memory>
#include <vector>

#include <CLI/CLI.hpp>

#include "bin/node_config.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"
#include "common/signals.hpp"
#include "emulator/service.hpp"
#include "http/server.hpp"

int main(int argc, char** argv) {
  using namespace crmsync;
  std::string listen = "127.0.0.1:8090";
  std::string tls_listen, tls_cert, tls_key, notification_ca;
  int64_t token_lifetime = 3600;
  uint64_t threads = 2;
  uint64_t mailbox_limit = 10000;
  int64_t mailbox_window = 600;
  CLI::App app{"graph-emulator - Microsoft Graph v1.0 and identity platform "
               "stand-in (control API under /_emulator).",
               "graph-emulator"};
  app.add_option("--listen", listen, "HOST:PORT for plain HTTP")
      ->envname("GRAPH_EMULATOR_LISTEN")
      ->capture_default_str();
  app.add_option("--tls-listen", tls_listen,
                 "HOST:PORT for HTTPS (needs --tls-cert and --tls-key)")
      ->envname("GRAPH_EMULATOR_TLS_LISTEN");
  app.add_option("--tls-cert", tls_cert, "PEM certificate chain for HTTPS")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", tls_key, "PEM private key for HTTPS")
      ->check(CLI::ExistingFile);
  app.add_option("--notification-ca-file", notification_ca,
                 "extra CA trusted for https notification URLs")
      ->check(CLI::ExistingFile);
  app.add_option("--token-lifetime", token_lifetime,
                 "seconds an access token stays valid")
      ->check(CLI::Range(int64_t{1}, int64_t{86400}))
      ->capture_default_str();
  app.add_option("--threads", threads, "HTTP I/O threads")
      ->check(CLI::Range(uint64_t{1}, uint64_t{64}))
      ->capture_default_str();
  app.add_option("--mailbox-limit", mailbox_limit,
                 "requests per app and mailbox in one window (429 beyond)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}))
      ->capture_default_str();
  app.add_option("--mailbox-window", mailbox_window,
                 "seconds of the per-mailbox request window")
      ->check(CLI::Range(int64_t{1}, int64_t{86400}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!tls_listen.empty() && (tls_cert.empty() || tls_key.empty())) {
    std::cerr << "graph-emulator: --tls-listen needs --tls-cert and "
                 "--tls-key\n";
    return 2;
  }
  if (!crypto::init()) {
    std::cerr << "graph-emulator: libsodium failed to initialise\n";
    return 1;
  }
  auto signals = block_shutdown_signals();

  emulator::service_config cfg;
  cfg.token_lifetime = std::chrono::seconds(token_lifetime);
  cfg.notifications.extra_ca_file = notification_ca;
  cfg.mailbox_requests_per_window = mailbox_limit;
  cfg.mailbox_window = std::chrono::seconds(mailbox_window);
  emulator::service svc{cfg};
  auto handler = [&svc](http::request&& req, http::responder_ptr r) {
    svc.handle(std::move(req), std::move(r));
  };
  // The plain and the TLS listener serve the same directory.
  std::vector<std::unique_ptr<http::server>> servers;
  struct listener {
    std::string address, cert, key, scheme;
  };
  std::vector<listener> wanted{{listen, "", "", "http"}};
  if (!tls_listen.empty())
    wanted.push_back({tls_listen, tls_cert, tls_key, "https"});
  for (auto& l : wanted) {
    http::server_config scfg;
    if (!split_host_port(l.address, scfg.host, scfg.port)) {
      std::cerr << "graph-emulator: bad listen address '" << l.address
                << "' (want HOST:PORT)\n";
      return 2;
    }
    scfg.threads = threads;
    scfg.max_body_bytes = 4u << 20;
    scfg.tls_cert_file = l.cert;
    scfg.tls_key_file = l.key;
    auto srv = std::make_unique<http::server>(scfg, handler);
    std::string err;
    if (!srv->start(err)) {
      std::cerr << "graph-emulator: " << err << "\n";
      return 1;
    }
    std::printf("graph-emulator listening on %s://%s:%u\n", l.scheme.c_str(),
                scfg.host.c_str(), static_cast<unsigned>(srv->port()));
    servers.push_back(std::move(srv));
  }
  std::fflush(stdout);
  wait_for_shutdown_signal(signals);
  for (auto& srv : servers)
    srv->stop_accepting();
  for (auto& srv : servers) {
    srv->wait_idle(std::chrono::seconds(5));
    srv->stop();
  }
  return 0;
}
