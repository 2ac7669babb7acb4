// libFuzzer target: what Graph POSTs to the webhooks (/webhooks/graph and
// /webhooks/graph/lifecycle): the query string, where the validation
// handshake's validationToken arrives (http/url.hpp parse_query), and the
// notification collection (sync/notifications.hpp).
//
// The input is the query, a newline, then the body.
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "http/url.hpp"
#include "sync/notifications.hpp"

using namespace crmsync;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  auto nl = in.find('\n');
  auto query = in.substr(0, nl);
  // Never a null pointer: the server hands on a std::string's bytes.
  auto body = in.substr(nl == std::string_view::npos ? in.size() : nl + 1);
  http::query_params q;
  if (http::parse_query(query, q))
    http::find_param(q, "validationToken");
  std::vector<sync::notification> items;
  if (!sync::parse_notifications(body, items))
    fuzz::require(items.empty(), "a refused collection left items");
  return 0;
}
