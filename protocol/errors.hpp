// Expected failures as values: the project's error enum and its API form.
//
// Actors answer with caf::error{crm_errc, context}; the context carries the
// API's snake_case code, a human sentence and the offending field, so the
// HTTP layer can render {"error":{"code","message","field"}} unchanged.
#pragma once

#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/make_message.hpp>

namespace crmsync {

enum class crm_errc : uint8_t {
  invalid_input = 1, ///< 400
  unauthorized,      ///< 401
  forbidden,         ///< 403
  not_found,         ///< 404
  conflict,          ///< 409
  storage_failure,   ///< 500
  unavailable,       ///< 503
  internal,          ///< 500
  gone,              ///< 410
  bad_gateway,       ///< 502 (Office 365 refused or failed)
};

/// The rendering of an error for API clients.
struct api_error {
  int status = 500;
  std::string code;
  std::string message;
  std::string field;
};

/// HTTP status for an error code.
int http_status(crm_errc x);

/// Builds a caf::error carrying the API's code, sentence and field.
caf::error make_crm_error(crm_errc x, std::string code, std::string message,
                          std::string field = {});

/// Converts any caf::error (ours, CAF's timeouts, …) to its API form.
api_error to_api_error(const caf::error& err);

} // namespace crmsync

CAF_ERROR_CODE_ENUM(crmsync::crm_errc, "crm")
