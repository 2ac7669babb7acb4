// End-to-end test support: every answer a test gets from a crmsyncd it
// runs, written down for the OpenAPI validator (tests/openapi/validate.mjs).
//
// When the environment variable CRMSYNC_OPENAPI_RECORD names a directory,
// each test process appends one JSON line per answer from a node to
// DIR/<program>-<pid>.jsonl:
//   {"test":…,"method":…,"target":…,"status":…,"content_type":…,"body":…}
// ("target" is the request's path and query; bodies over 8 MiB are left out
// and only their size is written, as "body_bytes"). Only answers from the
// nodes this process started (node_process) count: graph-emulator and other
// servers the tests talk to are not described by crmsyncd's document. Without
// the variable nothing is written. Safe to use from several threads.
#pragma once

#include <cstdint>
#include <string_view>

#include "http/client.hpp"

namespace crmsync::e2e {

/// The port of a crmsyncd this process started: its answers are recorded.
void note_node_port(uint16_t port);
/// That node stopped: a later server on the same port is not a node.
void forget_node_port(uint16_t port);

/// Appends one answer from the server at `port` to this process's record,
/// when recording is on and `port` is a node's.
void record_answer(uint16_t port, std::string_view method,
                   std::string_view target, const http::client_response& res);

} // namespace crmsync::e2e
