// libFuzzer target: one Graph event object as Graph answers a create, an
// update or a GET (sync/graph_event.hpp), and the id/changeKey reader used
// on those answers.
//
// An event that decodes is sent back the way crmsync would send it
// (to_graph, with and without its identity): that must be valid JSON and
// must decode again as an event.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "sync/graph_event.hpp"

using namespace crmsync;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  std::string id, change_key;
  if (sync::read_id_and_change_key(in, id, change_key))
    fuzz::require(!id.empty(), "read_id_and_change_key accepted no id");
  sync::graph_event e;
  if (!sync::from_graph(in, e))
    return 0;
  fuzz::require(!e.id.empty(), "from_graph accepted an event without id");
  if (e.removed)
    return 0;
  fuzz::require(e.content.end_ms >= e.content.start_ms,
                "from_graph produced an event that ends before it starts");
  for (bool with_identity : {false, true}) {
    auto body = sync::to_graph(e.content, with_identity);
    fuzz::require_json(body, "to_graph wrote invalid JSON");
    // Graph's answer is the body plus the id it assigns.
    body.insert(1, "\"id\":\"AAMkAG\",");
    sync::graph_event back;
    fuzz::require(sync::from_graph(body, back),
                  "an event crmsync writes does not decode");
  }
  return 0;
}
