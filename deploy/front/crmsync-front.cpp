// crmsync-front: the smallest load balancer that can stand in front of a
// crmsync cluster on one machine (deploy/run-cluster.sh). It accepts TCP
// connections on one address and hands each to the next backend in turn
// (round robin); a backend that refuses the connection is skipped for that
// connection, as nginx's `proxy_next_upstream error` would. Bytes are
// relayed both ways unchanged, so HTTP keep-alive, request bodies and
// half-closes pass through.
//
// It does not look inside HTTP: a 503 from a node (an owner that is down)
// reaches the client as it is, which is what the cluster wants.
//
//   crmsync-front --listen 127.0.0.1:8080 --backend 127.0.0.1:8081
//                 --backend 127.0.0.1:8082 ...
//
// Built by deploy/run-cluster.sh with the compiler and Boost headers the
// rest of crmsync needs already (Boost.Asio is header-only here); nothing
// in production depends on it: use nginx (deploy/nginx/) or a cloud load
// balancer there.
#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio.hpp>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct address {
  std::string host;
  std::string port;
};

bool parse_address(const std::string& text, address& out) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return false;
  out.host = text.substr(0, colon);
  out.port = text.substr(colon + 1);
  if (out.port.find_first_not_of("0123456789") != std::string::npos
      || out.port.size() > 5 || std::stoul(out.port) == 0
      || std::stoul(out.port) > 65535)
    return false;
  return true;
}

/// One direction of a relay: reads from `from`, writes to `to`; at the end
/// of `from` shuts down the sending side of `to`.
class pipe_half : public std::enable_shared_from_this<pipe_half> {
public:
  pipe_half(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to)
      : from_(std::move(from)), to_(std::move(to)) {}

  void start() {
    read();
  }

private:
  void read() {
    auto self = shared_from_this();
    from_->async_read_some(asio::buffer(buf_),
                           [self](boost::system::error_code ec, std::size_t n) {
                             if (ec) {
                               boost::system::error_code ignored;
                               if (ec == asio::error::eof) {
                                 // The peer finished sending: pass the
                                 // half-close on, keep the other direction open
                                 // until it ends too.
                                 self->to_->shutdown(tcp::socket::shutdown_send,
                                                     ignored);
                               } else {
                                 self->from_->close(ignored);
                                 self->to_->close(ignored);
                               }
                               return;
                             }
                             self->write(n);
                           });
  }

  void write(std::size_t n) {
    auto self = shared_from_this();
    asio::async_write(*to_, asio::buffer(buf_.data(), n),
                      [self](boost::system::error_code ec, std::size_t) {
                        if (ec) {
                          boost::system::error_code ignored;
                          self->from_->close(ignored);
                          self->to_->close(ignored);
                          return;
                        }
                        self->read();
                      });
  }

  std::shared_ptr<tcp::socket> from_;
  std::shared_ptr<tcp::socket> to_;
  std::array<char, 16384> buf_{};
};

class front {
public:
  front(asio::io_context& io, const address& listen,
        std::vector<tcp::endpoint> backends)
      : io_(io), acceptor_(io), backends_(std::move(backends)) {
    tcp::resolver resolver{io};
    auto at = *resolver.resolve(listen.host, listen.port).begin();
    acceptor_.open(at.endpoint().protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(at.endpoint());
    acceptor_.listen();
  }

  tcp::endpoint local() const {
    return acceptor_.local_endpoint();
  }

  void start() {
    accept();
  }

  void stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

private:
  void accept() {
    acceptor_.async_accept(
        [this](boost::system::error_code ec, tcp::socket client) {
          if (ec == asio::error::operation_aborted)
            return;
          if (!ec) {
            auto c = std::make_shared<tcp::socket>(std::move(client));
            c->set_option(tcp::no_delay(true), ec);
            auto first = next_++ % backends_.size();
            connect(c, first, 0);
          }
          accept();
        });
  }

  // Tries backend (first + tried) % n; on failure the next one, until all
  // were tried, then drops the client (it sees a closed connection, as
  // from a load balancer with no healthy upstream).
  void connect(std::shared_ptr<tcp::socket> client, std::size_t first,
               std::size_t tried) {
    if (tried == backends_.size()) {
      std::fprintf(stderr, "crmsync-front: no backend accepts connections\n");
      boost::system::error_code ignored;
      client->close(ignored);
      return;
    }
    auto up = std::make_shared<tcp::socket>(io_);
    const auto& target = backends_[(first + tried) % backends_.size()];
    up->async_connect(
        target, [this, client, up, first, tried](boost::system::error_code ec) {
          if (ec) {
            connect(client, first, tried + 1);
            return;
          }
          up->set_option(tcp::no_delay(true), ec);
          std::make_shared<pipe_half>(client, up)->start();
          std::make_shared<pipe_half>(up, client)->start();
        });
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::vector<tcp::endpoint> backends_;
  std::size_t next_ = 0;
};

int usage() {
  std::cerr << "usage: crmsync-front --listen HOST:PORT --backend HOST:PORT "
               "[--backend HOST:PORT ...]\n";
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  address listen;
  bool have_listen = false;
  std::vector<address> backends;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    }
    if ((arg != "--listen" && arg != "--backend") || i + 1 == argc)
      return usage();
    std::string value = argv[++i];
    address a;
    if (!parse_address(value, a)) {
      std::cerr << "crmsync-front: " << arg << " must be HOST:PORT, got '"
                << value << "'\n";
      return 2;
    }
    if (arg == "--listen") {
      listen = a;
      have_listen = true;
    } else {
      backends.push_back(a);
    }
  }
  if (!have_listen || backends.empty())
    return usage();

  try {
    asio::io_context io;
    tcp::resolver resolver{io};
    std::vector<tcp::endpoint> targets;
    for (const auto& b : backends)
      targets.push_back(resolver.resolve(b.host, b.port).begin()->endpoint());
    front f{io, listen, targets};
    f.start();
    asio::signal_set signals{io, SIGINT, SIGTERM};
    signals.async_wait([&](boost::system::error_code, int) {
      f.stop();
      io.stop();
    });
    auto at = f.local();
    std::printf("crmsync-front listening on %s:%u, %zu backends\n",
                at.address().to_string().c_str(), at.port(), targets.size());
    std::fflush(stdout);
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "crmsync-front: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
