#include "tests/support/eventually.hpp"

#include <thread>

namespace crmsync::test {

bool eventually(const std::function<bool()>& done,
                std::chrono::milliseconds timeout,
                std::chrono::milliseconds every) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return done();
    std::this_thread::sleep_for(every);
  }
}

} // namespace crmsync::test
