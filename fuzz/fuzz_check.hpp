// What the fuzz targets (fuzz/*_fuzz.cpp) assert: a broken property is a
// crash libFuzzer records, with the input that caused it.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <simdjson.h>

namespace crmsync::fuzz {

inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz check failed: %s\n", what);
    std::abort();
  }
}

/// Text crmsync wrote (or passed on) that must be one valid JSON document.
inline void require_json(std::string_view text, const char* what) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element ignored;
  require(!parser.parse(text.data(), text.size()).get(ignored), what);
}

} // namespace crmsync::fuzz
