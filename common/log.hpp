// The project's logger: one line per record on stderr, "ts level msg k=v...".
//
// Debian's CAF has its logger compiled out, so every component logs here.
// Thread-safe: each record is written with a single write(2) call.
#pragma once

#include <string>
#include <string_view>

namespace crmsync::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3 };

/// Sets the minimum level written (default: info).
void set_level(level lvl);

/// Parses "debug", "info", "warn" or "error"; returns false otherwise.
bool parse_level(std::string_view text, level& out);

void write(level lvl, std::string_view msg);

inline void debug(std::string_view msg) {
  write(level::debug, msg);
}
inline void info(std::string_view msg) {
  write(level::info, msg);
}
inline void warn(std::string_view msg) {
  write(level::warn, msg);
}
inline void error(std::string_view msg) {
  write(level::error, msg);
}

} // namespace crmsync::log
