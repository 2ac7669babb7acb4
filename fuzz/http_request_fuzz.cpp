// libFuzzer target: the bytes of one HTTP request as a client sends them,
// read with the parser and limits every connection of the node's server
// uses (http/server.hpp parse_request), with a small body limit so that
// both limits are reached.
//
// A request read completely keeps its body within the limit, and its path
// is the percent-decoded path of its target.
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "http/server.hpp"
#include "http/url.hpp"

using namespace crmsync;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t max_body_bytes = 4096;
  std::string_view in{reinterpret_cast<const char*>(data), size};
  http::request req;
  if (http::parse_request(in, max_body_bytes, req)
      != http::parse_outcome::complete)
    return 0;
  fuzz::require(!req.method.empty(), "a request without a method");
  fuzz::require(req.body.size() <= max_body_bytes, "a body over the limit");
  fuzz::require(req.target.size() >= req.path.size(),
                "a decoded path longer than its target");
  http::query_params q;
  http::parse_query(req.query, q);
  req.header("content-type");
  return 0;
}
