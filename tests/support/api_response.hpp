// Test support: one HTTP answer with JSON accessors, for every test that
// talks HTTP (crmsyncd through api_client, graph-emulator through
// test::emulator).
//
// Accessors take RFC 6901 pointers and throw std::runtime_error naming the
// pointer and showing the answer when a value is missing or has another
// type, so a Catch2 test fails with a readable message instead of crashing.
// A value type; copies share the parsed document (read-only).
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/client.hpp"

/// In a Catch2 test: REQUIRE a status, showing the answer only if it fails.
// The response expression is evaluated once (it may be a request).
#define E2E_REQUIRE_STATUS(response, expected)                                 \
  do {                                                                         \
    const auto& e2e_required_ = (response);                                    \
    INFO(e2e_required_.describe());                                            \
    REQUIRE(e2e_required_.status == (expected));                               \
  } while (false)

namespace crmsync::e2e {

/// One answer: status, raw body, headers and the parsed JSON (if any).
class api_response {
public:
  api_response() = default;
  api_response(int status, std::string body, http::header_list headers);
  explicit api_response(http::client_response r);

  /// A JSON text that did not come as an answer (a notification body, one
  /// item of a list), as a 200 answer.
  static api_response of_json(std::string body);

  int status = 0;
  std::string body;
  http::header_list headers;

  /// The first header with this name (case-insensitive), or "".
  std::string header(std::string_view name) const;

  /// True when the body parsed as JSON.
  bool is_json() const {
    return json_ok_;
  }
  /// The parsed document root; throws when the body is not JSON.
  simdjson::dom::element root() const;
  /// The element at an RFC 6901 pointer ("" = root); throws when absent.
  simdjson::dom::element at(std::string_view pointer) const;
  bool has(std::string_view pointer) const;

  std::string str(std::string_view pointer) const;
  int64_t i64(std::string_view pointer) const;
  uint64_t u64(std::string_view pointer) const;
  bool boolean(std::string_view pointer) const;
  bool is_null(std::string_view pointer) const;
  size_t size(std::string_view pointer) const; ///< array length
  /// The member names of the object at pointer, in order.
  std::vector<std::string> keys(std::string_view pointer) const;
  /// The minified JSON of the value at pointer.
  std::string json(std::string_view pointer = "") const;

  /// error.code / error.field ("" when absent) of an error answer.
  std::string error_code() const;
  std::string error_field() const;

  /// "STATUS BODY" for failure messages.
  std::string describe() const;

private:
  std::shared_ptr<simdjson::dom::parser> parser_;
  simdjson::dom::element root_;
  bool json_ok_ = false;
};

/// Minified form of any JSON element.
std::string minified(simdjson::dom::element e);

} // namespace crmsync::e2e
