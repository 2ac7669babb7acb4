// libFuzzer target: Graph's answer to a $batch (graph/wire.hpp
// parse_batch_answer) and what the client reads from its items: each
// item's body as a Graph error (parse_error_body) and its Retry-After.
//
// Item bodies are handed on as minified JSON, so each must be valid JSON;
// a Retry-After is never negative.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "graph/wire.hpp"

using namespace crmsync::graph;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  std::vector<wire::batch_item> items;
  if (!wire::parse_batch_answer(in, items)) {
    crmsync::fuzz::require(items.empty(), "a refused answer left items");
    return 0;
  }
  for (auto& item : items) {
    if (!item.body.empty())
      crmsync::fuzz::require_json(item.body, "an item body is not JSON");
    std::string code, message;
    wire::parse_error_body(item.body, code, message);
  }
  // The same bytes as one header value.
  if (auto ra = wire::parse_retry_after(in))
    crmsync::fuzz::require(*ra >= 0, "a negative Retry-After");
  return 0;
}
