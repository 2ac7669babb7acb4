// graph-emulator: a stateful stand-in for Microsoft Graph v1.0 and the
// identity platform, for tests, demos and benchmarks on machines that
// cannot reach Microsoft. Serves until SIGTERM/SIGINT.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <pthread.h>

#include <CLI/CLI.hpp>

#include "bin/node_config.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"
#include "emulator/service.hpp"
#include "http/server.hpp"

int main(int argc, char** argv) {
  using namespace crmsync;
  std::string listen = "127.0.0.1:8090";
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
  std::string host;
  uint16_t port = 0;
  if (!split_host_port(listen, host, port)) {
    std::cerr << "graph-emulator: --listen must be HOST:PORT\n";
    return 2;
  }
  if (!crypto::init()) {
    std::cerr << "graph-emulator: libsodium failed to initialise\n";
    return 1;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  emulator::service_config cfg;
  cfg.token_lifetime = std::chrono::seconds(token_lifetime);
  cfg.mailbox_requests_per_window = mailbox_limit;
  cfg.mailbox_window = std::chrono::seconds(mailbox_window);
  emulator::service svc{cfg};
  http::server_config scfg;
  scfg.host = host;
  scfg.port = port;
  scfg.threads = threads;
  scfg.max_body_bytes = 4u << 20;
  http::server server{scfg, [&svc](http::request&& req, http::responder_ptr r) {
                        svc.handle(std::move(req), std::move(r));
                      }};
  std::string err;
  if (!server.start(err)) {
    std::cerr << "graph-emulator: " << err << "\n";
    return 1;
  }
  std::printf("graph-emulator listening on http://%s:%u\n", host.c_str(),
              static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  server.stop_accepting();
  server.wait_idle(std::chrono::seconds(5));
  server.stop();
  return 0;
}
