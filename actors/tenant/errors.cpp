// The tenant actor's error answers (crm_errc with the API's code).
#include "actors/tenant/state.hpp"

#include "common/log.hpp"

namespace crmsync::actors::tenant_impl {

caf::error not_found(std::string what) {
  return make_crm_error(crm_errc::not_found, "not_found", what + " not found");
}

caf::error forbidden(std::string message) {
  return make_crm_error(crm_errc::forbidden, "forbidden", std::move(message));
}

caf::error invalid(std::string field, std::string message) {
  return make_crm_error(crm_errc::invalid_input, "invalid_field",
                        std::move(message), std::move(field));
}

caf::error corrupt(const std::string& what) {
  log::error("tenant: corrupt record: " + what);
  return make_crm_error(crm_errc::storage_failure, "storage_failure",
                        "a stored record could not be read");
}

/// 409 when the client's expected version (0: none) is not the stored one.
caf::error check_version(uint64_t expected, uint64_t actual) {
  if (expected == 0 || expected == actual)
    return caf::none;
  return make_crm_error(crm_errc::conflict, "stale_version",
                        "the event is at version " + std::to_string(actual)
                            + ", not " + std::to_string(expected),
                        "version");
}

caf::error office365_error(crm_errc code, std::string api_code,
                           std::string message) {
  return make_crm_error(code, std::move(api_code), std::move(message));
}

} // namespace crmsync::actors::tenant_impl
