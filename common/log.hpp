// The project's logger: one record per line on stderr, as text
// ("TIME LEVEL message request_id=… org=… user=…") or as one JSON object
// (`{"time","level","message","node","request_id","org","user"}`), chosen
// with --log-format.
//
// Debian's CAF has its logger compiled out, so every component logs here.
// Built on spdlog (Debian's libspdlog-dev): its stderr sink writes each
// record whole under a lock; this file adds the two line formats and the
// per-thread context. What a record says about the work it belongs to (the
// HTTP request's id, the organization, the user) comes from the calling
// thread's context, set for a stretch of code with `log::scope`, so call
// sites stay `log::info("...")`. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace crmsync::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3 };

/// Sets the minimum level written (default: info).
void set_level(level lvl);

/// Parses "debug", "info", "warn" or "error"; returns false otherwise.
bool parse_level(std::string_view text, level& out);

enum class format { text, json };

/// Sets the line format (default: text).
void set_format(format f);

/// Parses "text" or "json"; returns false otherwise.
bool parse_format(std::string_view text, format& out);

/// The node's id, written in every JSON line ("node").
void set_node(std::string node_id);

/// What a record says about the work it belongs to; empty fields are
/// unknown and left out.
struct context {
  std::string request_id;
  std::string org;
  std::string user;
};

/// The calling thread's context.
const context& current();

/// Sets the fields of `c` that are not empty on the calling thread's
/// context until the scope ends, then restores the previous context.
/// Scopes nest; use one per stretch of synchronous work on one thread.
class scope {
public:
  explicit scope(const context& c);
  ~scope();
  scope(const scope&) = delete;
  scope& operator=(const scope&) = delete;

private:
  context saved_;
};

/// One record, as a line is made of it.
struct record {
  int64_t time_ms = 0;
  level lvl = level::info;
  std::string_view message;
  std::string_view node;
  const context* ctx = nullptr;
};

/// The record as one line in the format, ending in '\n'. A JSON line is
/// one object whose strings are escaped (quotes, backslashes, control
/// characters, invalid UTF-8); a text line has its control characters
/// escaped, so no message can add a line of its own.
std::string format_line(format f, const record& r);

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
