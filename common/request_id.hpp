// Request ids: every HTTP request a node serves has one, taken from the
// X-Request-Id a trusted reverse proxy set or made here, so that one
// request can be followed through the logs of every node it touches.
// Pure functions, thread-safe (after crypto::init).
#pragma once

#include <string>
#include <string_view>

#include "common/address_set.hpp"

namespace crmsync {

/// Longest request id taken from a proxy.
constexpr size_t max_request_id_size = 128;

/// Whether `id` may be taken as it is: 1 to 128 characters of letters,
/// digits and "-_.:=+/@" (no blank, quote, backslash or control
/// character: it is written into log lines and answer headers).
bool valid_request_id(std::string_view id);

/// A new id: a version-4 GUID, different from every other this process
/// makes and (random per thread) from other processes' ids. Not a secret:
/// made without a system call, for every request.
std::string new_request_id();

/// `header` when it is a valid request id, else a new random GUID.
std::string request_id_or_new(std::string_view header);

/// The id of a request from `remote` ("HOST:PORT") carrying
/// `header` as its X-Request-Id (or ""): the header when the peer is one
/// of `trusted` and the header is valid, else a new random GUID. A
/// client that is not a trusted proxy never chooses its id.
std::string choose_request_id(std::string_view header,
                              const std::string& remote,
                              const address_set& trusted);

} // namespace crmsync
