#include "common/log.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <string>

namespace {

using namespace crmsync;

/// The JSON line parsed: one object, ending in exactly one newline.
simdjson::dom::element parse_line(simdjson::dom::parser& p,
                                  const std::string& line) {
  REQUIRE(!line.empty());
  REQUIRE(line.back() == '\n');
  REQUIRE(line.find('\n') == line.size() - 1);
  simdjson::dom::element doc;
  REQUIRE(p.parse(line.substr(0, line.size() - 1)).get(doc)
          == simdjson::SUCCESS);
  REQUIRE(doc.is_object());
  return doc;
}

std::string field(simdjson::dom::element doc, const char* name) {
  std::string_view v;
  if (doc[name].get(v) != simdjson::SUCCESS)
    return "<absent>";
  return std::string{v};
}

} // namespace

TEST_CASE("a JSON log line is one object with the record's fields",
          "[common][log]") {
  log::context ctx{"req-1", "42", "7"};
  log::record r;
  r.time_ms = 1'796'000'000'123;
  r.lvl = log::level::warn;
  r.message = "sync 42/7: blocked";
  r.node = "n1";
  r.ctx = &ctx;
  simdjson::dom::parser p;
  auto doc = parse_line(p, log::format_line(log::format::json, r));
  CHECK(field(doc, "time") == "2026-11-30T00:53:20.123Z");
  CHECK(field(doc, "level") == "warn");
  CHECK(field(doc, "message") == "sync 42/7: blocked");
  CHECK(field(doc, "node") == "n1");
  CHECK(field(doc, "request_id") == "req-1");
  CHECK(field(doc, "org") == "42");
  CHECK(field(doc, "user") == "7");
  // What is not known is left out.
  log::context none;
  r.ctx = &none;
  doc = parse_line(p, log::format_line(log::format::json, r));
  CHECK(field(doc, "request_id") == "<absent>");
  CHECK(field(doc, "org") == "<absent>");
  CHECK(field(doc, "user") == "<absent>");
}

TEST_CASE("a JSON log line escapes quotes, newlines and control characters",
          "[common][log]") {
  // What an attacker may get into a message: an e-mail address or a path
  // with a quote, a newline and a fake record after it, control bytes,
  // and bytes that are not UTF-8.
  const std::string nasty = "bob\"@x\\y\n{\"level\":\"error\",\"message\":"
                            "\"forged\"}\r\t\x01\x1f end \xff\xfe";
  log::context ctx{"id\"\n", "o\x02", "u\\"};
  log::record r;
  r.time_ms = 0;
  r.message = nasty;
  r.node = "n\"1";
  r.ctx = &ctx;
  auto line = log::format_line(log::format::json, r);
  // No raw control character survives: the line is one line.
  for (char c : line.substr(0, line.size() - 1))
    CHECK(static_cast<unsigned char>(c) >= 0x20);
  CHECK(line.find("\\n") != std::string::npos);
  CHECK(line.find("\\\"") != std::string::npos);
  CHECK(line.find("\\u0001") != std::string::npos);
  CHECK(line.find("\\u001f") != std::string::npos);
  simdjson::dom::parser p;
  auto doc = parse_line(p, line);
  // Valid UTF-8 round-trips exactly; invalid bytes become U+FFFD.
  CHECK(field(doc, "message")
        == "bob\"@x\\y\n{\"level\":\"error\",\"message\":\"forged\"}\r\t"
           "\x01\x1f end \xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(field(doc, "level") == "info");
  CHECK(field(doc, "node") == "n\"1");
  CHECK(field(doc, "request_id") == "id\"\n");
  CHECK(field(doc, "org") == "o\x02");
  CHECK(field(doc, "user") == "u\\");
}

TEST_CASE("a text log line cannot be split by its message", "[common][log]") {
  log::context ctx{"r1", "", ""};
  log::record r;
  r.time_ms = 0;
  r.lvl = log::level::error;
  r.message = "a\nb\r\x07";
  r.ctx = &ctx;
  auto line = log::format_line(log::format::text, r);
  CHECK(line == "1970-01-01T00:00:00.000Z ERROR a\\nb\\r\\x07 request_id=r1\n");
}

TEST_CASE("log scopes set the thread's context and restore it",
          "[common][log]") {
  CHECK(log::current().request_id.empty());
  {
    log::scope outer{log::context{"r1", "o1", ""}};
    CHECK(log::current().request_id == "r1");
    {
      // Empty fields keep what the outer scope set.
      log::scope inner{log::context{"", "", "u1"}};
      CHECK(log::current().request_id == "r1");
      CHECK(log::current().org == "o1");
      CHECK(log::current().user == "u1");
    }
    CHECK(log::current().user.empty());
    CHECK(log::current().org == "o1");
  }
  CHECK(log::current().request_id.empty());
  CHECK(log::current().org.empty());
}

TEST_CASE("log formats and levels parse by name", "[common][log]") {
  log::format f = log::format::text;
  CHECK(log::parse_format("json", f));
  CHECK(f == log::format::json);
  CHECK(log::parse_format("text", f));
  CHECK(f == log::format::text);
  CHECK_FALSE(log::parse_format("JSON", f));
  CHECK_FALSE(log::parse_format("", f));
}
