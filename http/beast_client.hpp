// What the two HTTP clients (client.cpp, blocking; async_client.cpp) share
// on top of Beast. Private to those two files: Beast stays out of every
// public header.
#pragma once

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include <cstdint>
#include <string_view>

namespace crmsync::http::beast_client {

/// Answers large enough for admin listings; the header limit only guards
/// against junk.
constexpr std::uint64_t body_limit = 64ull * 1024 * 1024;
constexpr std::uint32_t header_limit = 64 * 1024;

/// Beast 1.74 uses boost::string_view; the public interfaces use std's.
inline boost::beast::string_view to_beast(std::string_view s) {
  return boost::beast::string_view(s.data(), s.size());
}

/// Errors that mean "the peer dropped a keep-alive connection we thought
/// alive": a pooled connection failing so, before any answer arrived, is
/// replaced by a fresh one. A TLS peer that closes without close_notify
/// shows as a truncated stream.
inline bool is_stale_connection_error(const boost::system::error_code& ec) {
  namespace asio = boost::asio;
  return ec == boost::beast::http::error::end_of_stream
         || ec == asio::error::eof || ec == asio::error::connection_reset
         || ec == asio::error::connection_aborted
         || ec == asio::error::broken_pipe
         || ec == asio::ssl::error::stream_truncated;
}

} // namespace crmsync::http::beast_client
