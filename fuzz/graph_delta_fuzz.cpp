// libFuzzer target: a page of calendarView/delta as Graph answers it
// (sync/graph_event.hpp parse_delta_page), then each of its items as the
// sync engine reads them (from_graph).
//
// The items are handed on as minified JSON, so each must be valid JSON.
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "sync/graph_event.hpp"

using namespace crmsync;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  sync::delta_page page;
  if (!sync::parse_delta_page(in, page))
    return 0;
  fuzz::require(!page.next_link.empty() || !page.delta_link.empty(),
                "a delta page without a link was accepted");
  for (auto& item : page.items) {
    fuzz::require_json(item, "a delta item is not valid JSON");
    sync::graph_event e;
    sync::from_graph(item, e);
  }
  return 0;
}
