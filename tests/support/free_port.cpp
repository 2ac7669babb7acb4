#include "tests/support/free_port.hpp"

#include <fstream>
#include <random>
#include <stdexcept>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace crmsync::test {

namespace {

/// Whether `port` on 127.0.0.1 can be bound right now (0: any; then
/// `port` is set to the one the kernel chose).
bool bindable(uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    throw std::runtime_error("socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  socklen_t len = sizeof a;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0
            && ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  if (ok)
    port = ntohs(a.sin_port);
  return ok;
}

/// The first port of the kernel's ephemeral range.
int ephemeral_low() {
  std::ifstream f{"/proc/sys/net/ipv4/ip_local_port_range"};
  int low = 0;
  if (f >> low && low > 0)
    return low;
  return 32768;
}

} // namespace

uint16_t free_port() {
  static const int top = ephemeral_low();
  constexpr int bottom = 10000;
  if (top > bottom + 1000) {
    std::random_device seed;
    std::mt19937 rng{seed()};
    std::uniform_int_distribution<int> pick{bottom, top - 1};
    for (int tries = 0; tries < 200; ++tries) {
      auto port = static_cast<uint16_t>(pick(rng));
      if (bindable(port))
        return port;
    }
  }
  // No room below the range (or all taken): any free port.
  uint16_t port = 0;
  if (!bindable(port))
    throw std::runtime_error("cannot find a free port");
  return port;
}

} // namespace crmsync::test
