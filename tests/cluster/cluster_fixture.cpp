#include "tests/cluster/cluster_fixture.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include "http/url.hpp"
#include "tests/e2e/office365_fixture.hpp"
#include "tests/support/free_port.hpp"

namespace crmsync::e2e {

namespace {

constexpr const char* outlook_id = "outlook";
constexpr const char* outlook_secret = "o";

using clock = std::chrono::steady_clock;

} // namespace

std::string org_body(const std::string& name, const std::string& email) {
  return R"({"name":)" + json_str(name)
         + R"(,"edition":"free","admin":{"email":)" + json_str(email)
         + R"(,"name":"Admin"}})";
}

std::string run_command(const std::string& cmd, int& code) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    out.append(buf, n);
  int status = ::pclose(p);
  code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

void make_cluster_certs(const std::string& dir,
                        const std::vector<std::string>& nodes) {
  auto cmd = std::string{"bash "} + CLUSTER_CA_SCRIPT + " " + dir;
  for (auto& n : nodes)
    cmd += " " + n;
  cmd += " 2>&1";
  int code = -1;
  auto out = run_command(cmd, code);
  INFO(cmd << " -> " << out);
  REQUIRE(code == 0);
}

closed_port::closed_port() {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0)
    throw std::runtime_error("socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0
      || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd_);
    throw std::runtime_error("bind() failed");
  }
  port_ = ntohs(a.sin_port);
}

closed_port::~closed_port() {
  ::close(fd_);
}

uint16_t cluster_port() {
  // Free once this returns; the node binds it a moment later.
  return test::free_port();
}

tcp_front::tcp_front(std::function<std::vector<uint16_t>()> backends)
    : backends_(std::move(backends)) {
  listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (listener_ < 0
      || ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0
      || ::listen(listener_, 64) != 0
      || ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("tcp_front: cannot listen");
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

tcp_front::~tcp_front() {
  stopping_ = true;
  ::shutdown(listener_, SHUT_RDWR);
  ::close(listener_);
  acceptor_.join();
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (int fd : open_)
      ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : threads_)
    t.join();
  for (int fd : open_)
    ::close(fd);
}

void tcp_front::accept_loop() {
  while (!stopping_) {
    int client = ::accept(listener_, nullptr, nullptr);
    if (client < 0) {
      if (stopping_)
        return;
      continue;
    }
    std::lock_guard<std::mutex> guard{mtx_};
    open_.push_back(client);
    threads_.emplace_back([this, client] { serve(client); });
  }
}

void tcp_front::serve(int client) {
  auto ports = backends_();
  std::shuffle(ports.begin(), ports.end(),
               std::mt19937{std::random_device{}()});
  int backend = -1;
  for (auto port : ports) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      backend = fd;
      break;
    }
    ::close(fd);
  }
  if (backend < 0) {
    ::shutdown(client, SHUT_RDWR);
    return;
  }
  {
    std::lock_guard<std::mutex> guard{mtx_};
    open_.push_back(backend);
  }
  // One direction here, the other on a helper thread; each ends the
  // other's writing side at EOF.
  auto pipe = [](int from, int to) {
    char buf[16384];
    for (;;) {
      auto n = ::read(from, buf, sizeof buf);
      if (n <= 0)
        break;
      for (ssize_t off = 0; off < n;) {
        // MSG_NOSIGNAL: a peer gone meanwhile (a node killed, a client
        // that hung up) must end this pipe, not kill the test process
        // with SIGPIPE (seen once in a suite run: the test died silently).
        auto w
            = ::send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
        if (w <= 0)
          return;
        off += w;
      }
    }
    ::shutdown(to, SHUT_WR);
  };
  std::thread back([&] { pipe(backend, client); });
  pipe(client, backend);
  back.join();
}

cluster_env::cluster_env(std::vector<std::string> node_args)
    : cluster_env(std::move(node_args), std::string{}) {}

cluster_env::cluster_env(std::vector<std::string> node_args,
                         std::string etcd_url)
    : o365_({dir_.path() + "/emulator.log", 0, {}})
    , node_args_(std::move(node_args))
    , etcd_url_(std::move(etcd_url))
    , seed_(std::random_device{}())
    , rng_(seed_) {
  o365_.register_app(outlook_id, outlook_secret, {"contoso.com"});
  outlook_ = std::make_unique<graph_app>(o365_.port(), "contoso.com",
                                         outlook_id, outlook_secret);

  std::vector<std::string> ids;
  for (int i = 0; i < size; ++i)
    ids.push_back(node_id(i));
  make_cluster_certs(dir_.path() + "/certs", ids);
  for (int i = 0; i < size; ++i)
    cluster_ports_[i] = cluster_port();
  front_ = std::make_unique<tcp_front>([this] {
    std::vector<uint16_t> out;
    for (int i = 0; i < size; ++i)
      if (auto port = http_ports_[i].load(); port != 0)
        out.push_back(port);
    return out;
  });
  for (int i = 0; i < size; ++i)
    start(i);
  if (etcd_url_.empty())
    wait_connected();
  else
    wait_ready();
}

cluster_env::~cluster_env() {
  for (auto& [id, p] : extras_)
    if (p->running())
      p->stop(std::chrono::seconds(10));
  for (int i = 0; i < size; ++i) {
    clients_[i].reset();
    if (procs_[i].running())
      procs_[i].stop(std::chrono::seconds(10));
  }
  o365_.stop();
  front_.reset();
}

std::vector<std::string> cluster_env::args_for(int i) const {
  std::string peers;
  for (int j = 0; j < size; ++j) {
    if (j == i)
      continue;
    if (!peers.empty())
      peers += ",";
    peers += node_id(j) + "=127.0.0.1:" + std::to_string(cluster_ports_[j]);
  }
  std::vector<std::string> args{"--node-id", node_id(i), "--cluster-listen"};
  if (etcd_url_.empty()) {
    args.insert(args.end(), {"127.0.0.1:" + std::to_string(cluster_ports_[i]),
                             "--peers", peers});
  } else {
    // Each node registers the port it bound; the first shard map waits
    // for all three.
    args.insert(args.end(), {"127.0.0.1:0", "--etcd-endpoints", etcd_url_,
                             "--initial-members", std::to_string(size)});
  }
  args.insert(args.end(),
              {"--cluster-ca-file", dir_.path() + "/certs/ca.pem",
               "--cluster-cert", dir_.path() + "/certs/" + node_id(i) + ".pem",
               "--cluster-key", dir_.path() + "/certs/" + node_id(i) + ".key",
               "--public-url",
               "http://127.0.0.1:" + std::to_string(front_->port()),
               "--request-timeout-ms", "5000", "--log-level", "info"});
  auto o365 = o365_.node_args();
  args.insert(args.end(), o365.begin(), o365.end());
  args.insert(args.end(), node_args_.begin(), node_args_.end());
  return args;
}

uint16_t cluster_env::start_extra(const std::string& id,
                                  const std::vector<std::string>& more) {
  if (etcd_url_.empty())
    throw std::runtime_error("start_extra: a cluster on etcd only");
  make_cluster_certs(dir_.path() + "/certs", {id});
  // Node 1's command line, as this member's.
  auto args = args_for(0);
  auto certs = dir_.path() + "/certs/";
  for (size_t a = 0; a + 1 < args.size(); ++a) {
    if (args[a] == "--node-id")
      args[a + 1] = id;
    else if (args[a] == "--cluster-cert")
      args[a + 1] = certs + id + ".pem";
    else if (args[a] == "--cluster-key")
      args[a + 1] = certs + id + ".key";
  }
  args.insert(args.end(), more.begin(), more.end());
  node_options o;
  o.data_dir = dir_.path() + "/" + id;
  o.admin_token = admin_token;
  o.log_file = dir_.path() + "/" + id + ".log";
  o.extra_args = std::move(args);
  auto& p = extras_[id];
  p = std::make_unique<node_process>();
  p->start(o);
  return p->port();
}

void cluster_env::stop_extra(const std::string& id) {
  auto p = extras_.find(id);
  if (p != extras_.end() && p->second->running())
    p->second->stop(std::chrono::seconds(10));
}

void cluster_env::start(int i) {
  node_options o;
  o.data_dir = data_dir(i);
  // o.listen stays 127.0.0.1:0: the node reports the port it bound.
  o.admin_token = admin_token;
  o.log_file = dir_.path() + "/" + node_id(i) + ".log";
  o.extra_args = args_for(i);
  procs_[i].start(o);
  http_ports_[i] = procs_[i].port();
  clients_[i] = std::make_unique<api_client>(procs_[i].port());
  clients_[i]->share_cookies(cookies_);
}

void cluster_env::kill9(int i) {
  clients_[i].reset();
  http_ports_[i] = 0;
  procs_[i].kill9();
}

pid_t cluster_env::pid(int i) const {
  return procs_[i].pid();
}

api_client& cluster_env::node(int i) {
  if (!clients_[i])
    throw std::runtime_error("node " + node_id(i) + " is not running");
  return *clients_[i];
}

int cluster_env::index_of(std::string_view id) const {
  for (int i = 0; i < size; ++i)
    if (node_id(i) == id)
      return i;
  throw std::runtime_error("no node " + std::string{id});
}

int cluster_env::any() {
  std::vector<int> up;
  for (int i = 0; i < size; ++i)
    if (clients_[i])
      up.push_back(i);
  if (up.empty())
    throw std::runtime_error("no node is running");
  std::uniform_int_distribution<size_t> pick(0, up.size() - 1);
  return up[pick(rng_)];
}

api_response cluster_env::call(std::string_view method, std::string_view target,
                               std::string_view token, std::string_view body) {
  return node(any()).request(method, target, token, body);
}

api_response cluster_env::call_retrying(std::string_view method,
                                        std::string_view target,
                                        std::string_view token,
                                        std::string_view body,
                                        std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  for (;;) {
    auto r = call(method, target, token, body);
    if (r.status != 503 || clock::now() >= deadline)
      return r;
    // Every 503 of the cluster says when to come back.
    REQUIRE(r.header("Retry-After") == "1");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void cluster_env::wait_ready(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  for (;;) {
    std::string last;
    bool all = true;
    for (int i = 0; i < size && all; ++i) {
      if (!clients_[i])
        continue;
      auto r = clients_[i]->get("", "/readyz");
      if (r.status != 200) {
        all = false;
        last = node_id(i) + ": " + r.describe();
      }
    }
    if (all)
      return;
    if (clock::now() >= deadline) {
      INFO("last answer: " << last);
      FAIL("the nodes did not report ready in time");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void cluster_env::wait_connected(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  std::string last;
  for (;;) {
    bool all = true;
    for (int i = 0; i < size && all; ++i) {
      if (!clients_[i])
        continue;
      auto r = clients_[i]->get(admin_token, "/admin/v1/cluster");
      last = r.describe();
      if (r.status != 200) {
        all = false;
        break;
      }
      for (size_t m = 0; m < r.size("/members"); ++m) {
        auto base = "/members/" + std::to_string(m);
        int j = index_of(r.str(base + "/id"));
        if (clients_[j] && !r.boolean(base + "/up"))
          all = false;
      }
    }
    if (all)
      return;
    if (clock::now() >= deadline) {
      INFO("last cluster view: " << last);
      FAIL("the nodes did not connect to each other in time");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string cluster_env::owner_of(std::string_view org) {
  auto r = call_retrying("GET", "/admin/v1/tenants/" + std::string{org},
                         admin_token);
  E2E_REQUIRE_STATUS(r, 200);
  return r.str("/node");
}

std::string cluster_env::follow(const std::string& url, std::string_view upn) {
  return sign_in_at_emulator(emulator(), o365_.url(), url, upn);
}

cluster_env::signin cluster_env::sign_in(std::string_view path,
                                         std::string_view upn) {
  signin out;
  auto start = call("GET", path, "");
  E2E_REQUIRE_STATUS(start, 302);
  auto next = follow(start.header("Location"), upn);
  for (int step = 0; step < 3; ++step) {
    // The callback names the node that started the sign-in; any node
    // finishes it.
    auto parts = split_url(next);
    out.answer = call("GET", parts.target, "");
    if (out.answer.status != 302)
      break;
    next = follow(out.answer.header("Location"), upn); // admin consent
  }
  if (out.answer.status == 200) {
    if (out.answer.has("/user/token"))
      out.token = out.answer.str("/user/token");
    if (out.answer.has("/office365_session"))
      out.session = out.answer.str("/office365_session");
  }
  return out;
}

api_response cluster_env::graph(std::string_view method, std::string_view path,
                                std::string_view body) {
  return outlook_->call(method, path, body);
}

std::vector<graph_event> cluster_env::o365_events(std::string_view upn,
                                                  std::string_view calendar) {
  return calendar_events(*outlook_, o365_id(upn), calendar);
}

uint64_t metric(api_client& node, const std::string& series) {
  auto m = node.get(admin_token, "/metrics");
  auto at = m.body.find("\n" + series + " ");
  if (at == std::string::npos)
    return 0;
  return std::stoull(m.body.substr(at + series.size() + 2));
}

} // namespace crmsync::e2e
