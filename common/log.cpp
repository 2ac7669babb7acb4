#include "common/log.hpp"

#include <atomic>
#include <unistd.h>

#include "common/clock.hpp"
#include "common/time_format.hpp"

namespace crmsync::log {

namespace {

std::atomic<int> min_level{static_cast<int>(level::info)};

const char* level_name(level lvl) {
  switch (lvl) {
    case level::debug:
      return "DEBUG";
    case level::info:
      return "INFO";
    case level::warn:
      return "WARN";
    default:
      return "ERROR";
  }
}

} // namespace

void set_level(level lvl) {
  min_level = static_cast<int>(lvl);
}

bool parse_level(std::string_view text, level& out) {
  if (text == "debug")
    out = level::debug;
  else if (text == "info")
    out = level::info;
  else if (text == "warn")
    out = level::warn;
  else if (text == "error")
    out = level::error;
  else
    return false;
  return true;
}

void write(level lvl, std::string_view msg) {
  if (static_cast<int>(lvl) < min_level.load(std::memory_order_relaxed))
    return;
  std::string line = format_rfc3339_ms(system_now_ms());
  line += ' ';
  line += level_name(lvl);
  line += ' ';
  line += msg;
  line += '\n';
  // One write per record keeps lines whole when threads log concurrently.
  auto rc = ::write(STDERR_FILENO, line.data(), line.size());
  (void)rc;
}

} // namespace crmsync::log
