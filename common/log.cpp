#include "common/log.hpp"
#include "common/log_enabled.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>

#include <spdlog/formatter.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "common/clock.hpp"
#include "common/json_text.hpp"
#include "common/time_format.hpp"

namespace crmsync::log {

namespace {

std::atomic<int> min_level{static_cast<int>(level::info)};
std::atomic<int> line_format{static_cast<int>(format::text)};
// Set once at start-up, before other threads log.
std::string node_id;
thread_local context current_context;

const char* text_level(level lvl) {
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

const char* json_level(level lvl) {
  switch (lvl) {
    case level::debug:
      return "debug";
    case level::info:
      return "info";
    case level::warn:
      return "warn";
    default:
      return "error";
  }
}

/// Text without its control characters: "\n" for a newline and so on, so
/// a message cannot start a line that looks like a record of its own.
void append_text(std::string& out, std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else
      out += ch;
  }
}

void append_json_field(std::string& out, const char* name,
                       std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  append_json_string(out, value);
}

spdlog::level::level_enum to_spdlog(level lvl) {
  switch (lvl) {
    case level::debug:
      return spdlog::level::debug;
    case level::info:
      return spdlog::level::info;
    case level::warn:
      return spdlog::level::warn;
    default:
      return spdlog::level::err;
  }
}

level from_spdlog(spdlog::level::level_enum lvl) {
  switch (lvl) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return level::debug;
    case spdlog::level::info:
      return level::info;
    case spdlog::level::warn:
      return level::warn;
    default:
      return level::error;
  }
}

/// spdlog's formatter for our two line formats. A sink formats on the
/// thread that logs (the logger is synchronous), so the thread's context
/// is the record's.
class line_formatter final : public spdlog::formatter {
public:
  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override {
    record r;
    r.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    msg.time.time_since_epoch())
                    .count();
    r.lvl = from_spdlog(msg.level);
    r.message = std::string_view{msg.payload.data(), msg.payload.size()};
    r.node = node_id;
    r.ctx = &current_context;
    auto line = format_line(static_cast<enum format>(line_format.load()), r);
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<line_formatter>();
  }
};

spdlog::logger& logger() {
  // Never destroyed: threads may still log while static objects go.
  static auto* instance = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto* l = new spdlog::logger("crmsync", std::move(sink));
    l->set_formatter(std::make_unique<line_formatter>());
    // Levels are filtered in write(); the sink writes what it gets.
    l->set_level(spdlog::level::trace);
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return *instance;
}

} // namespace

void set_level(level lvl) {
  min_level = static_cast<int>(lvl);
}

bool enabled(level lvl) {
  return static_cast<int>(lvl) >= min_level.load(std::memory_order_relaxed);
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

void set_format(format f) {
  line_format = static_cast<int>(f);
}

bool parse_format(std::string_view text, format& out) {
  if (text == "text")
    out = format::text;
  else if (text == "json")
    out = format::json;
  else
    return false;
  return true;
}

void set_node(std::string id) {
  node_id = std::move(id);
}

const context& current() {
  return current_context;
}

scope::scope(const context& c) : saved_(current_context) {
  if (!c.request_id.empty())
    current_context.request_id = c.request_id;
  if (!c.org.empty())
    current_context.org = c.org;
  if (!c.user.empty())
    current_context.user = c.user;
}

scope::~scope() {
  current_context = std::move(saved_);
}

std::string format_line(format f, const record& r) {
  static const context none;
  const context& ctx = r.ctx != nullptr ? *r.ctx : none;
  std::string line;
  line.reserve(96 + r.message.size());
  if (f == format::json) {
    line += "{\"time\":\"";
    line += format_rfc3339_ms(r.time_ms);
    line += "\",\"level\":\"";
    line += json_level(r.lvl);
    line += '"';
    append_json_field(line, "message", r.message);
    append_json_field(line, "node", r.node);
    if (!ctx.request_id.empty())
      append_json_field(line, "request_id", ctx.request_id);
    if (!ctx.org.empty())
      append_json_field(line, "org", ctx.org);
    if (!ctx.user.empty())
      append_json_field(line, "user", ctx.user);
    line += "}\n";
    return line;
  }
  line += format_rfc3339_ms(r.time_ms);
  line += ' ';
  line += text_level(r.lvl);
  line += ' ';
  append_text(line, r.message);
  auto field = [&line](const char* name, const std::string& value) {
    if (value.empty())
      return;
    line += ' ';
    line += name;
    line += '=';
    append_text(line, value);
  };
  field("request_id", ctx.request_id);
  field("org", ctx.org);
  field("user", ctx.user);
  line += '\n';
  return line;
}

void write(level lvl, std::string_view msg) {
  if (!enabled(lvl))
    return;
  logger().log(spdlog::source_loc{}, to_spdlog(lvl),
               spdlog::string_view_t{msg.data(), msg.size()});
}

} // namespace crmsync::log
