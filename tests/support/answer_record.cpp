#include "tests/support/answer_record.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <string>

#include "protocol/json.hpp"

namespace crmsync::e2e {

namespace {

/// Bodies larger than this are not written (their size is).
constexpr size_t max_recorded_body = 8 * 1024 * 1024;

/// The test this process runs: Catch2's first argument as ctest passes it
/// (the test's name), or "" when run without one.
std::string test_name() {
  std::ifstream in{"/proc/self/cmdline", std::ios::binary};
  std::string arg;
  std::getline(in, arg, '\0'); // the program
  while (std::getline(in, arg, '\0'))
    if (!arg.empty() && arg[0] != '-')
      return arg;
  return {};
}

std::string program_name() {
  std::ifstream in{"/proc/self/comm"};
  std::string name;
  std::getline(in, name);
  return name.empty() ? std::string{"test"} : name;
}

class recorder {
public:
  static recorder& instance() {
    static recorder r;
    return r;
  }

  void note(uint16_t port) {
    std::lock_guard<std::mutex> guard{mtx_};
    ports_.insert(port);
  }

  void forget(uint16_t port) {
    std::lock_guard<std::mutex> guard{mtx_};
    ports_.erase(port);
  }

  void record(uint16_t port, std::string_view method, std::string_view target,
              const http::client_response& res) {
    if (dir_.empty())
      return;
    std::lock_guard<std::mutex> guard{mtx_};
    if (ports_.count(port) == 0 || !open())
      return;
    std::string line = "{\"test\":";
    json::append_string(line, test_);
    line += ",\"method\":";
    json::append_string(line, method);
    line += ",\"target\":";
    json::append_string(line, target);
    line += ",\"status\":" + std::to_string(res.status);
    line += ",\"content_type\":";
    json::append_string(line, res.header("Content-Type"));
    if (res.body.size() > max_recorded_body) {
      line += ",\"body_bytes\":" + std::to_string(res.body.size());
    } else {
      line += ",\"body\":";
      json::append_string(line, res.body);
    }
    line += "}\n";
    write_all(line);
  }

private:
  recorder() {
    if (const char* dir = std::getenv("CRMSYNC_OPENAPI_RECORD"))
      dir_ = dir;
  }

  // Opens DIR/<program>-<pid>.jsonl on first use (making DIR when
  // missing); false (reported once)
  // when it cannot be opened.
  bool open() {
    if (fd_ >= 0)
      return true;
    if (failed_)
      return false;
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec); // an error shows below
    auto path = dir_ + "/" + program_name() + "-" + std::to_string(::getpid())
                + ".jsonl";
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      failed_ = true;
      std::cerr << "CRMSYNC_OPENAPI_RECORD: cannot open " << path << "\n";
      return false;
    }
    test_ = test_name();
    return true;
  }

  void write_all(const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      auto n = ::write(fd_, s.data() + done, s.size() - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        std::cerr << "CRMSYNC_OPENAPI_RECORD: write failed\n";
        return;
      }
      done += static_cast<size_t>(n);
    }
  }

  std::mutex mtx_;
  std::set<uint16_t> ports_;
  std::string dir_;
  std::string test_;
  int fd_ = -1;
  bool failed_ = false;
};

} // namespace

void note_node_port(uint16_t port) {
  recorder::instance().note(port);
}

void forget_node_port(uint16_t port) {
  recorder::instance().forget(port);
}

void record_answer(uint16_t port, std::string_view method,
                   std::string_view target, const http::client_response& res) {
  recorder::instance().record(port, method, target, res);
}

} // namespace crmsync::e2e
