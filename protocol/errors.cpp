#include "protocol/errors.hpp"

#include <caf/sec.hpp>

namespace crmsync {

int http_status(crm_errc x) {
  switch (x) {
    case crm_errc::invalid_input:
      return 400;
    case crm_errc::unauthorized:
      return 401;
    case crm_errc::forbidden:
      return 403;
    case crm_errc::not_found:
      return 404;
    case crm_errc::conflict:
      return 409;
    case crm_errc::unavailable:
      return 503;
    case crm_errc::gone:
      return 410;
    case crm_errc::bad_gateway:
      return 502;
    default:
      return 500;
  }
}

caf::error make_crm_error(crm_errc x, std::string code, std::string message,
                          std::string field) {
  return caf::make_error(x, std::move(code), std::move(message),
                         std::move(field));
}

api_error to_api_error(const caf::error& err) {
  api_error out;
  if (err.category() == caf::atom("crm")) {
    out.status = http_status(static_cast<crm_errc>(err.code()));
    const auto& ctx = err.context();
    if (ctx.match_elements<std::string, std::string, std::string>()) {
      out.code = ctx.get_as<std::string>(0);
      out.message = ctx.get_as<std::string>(1);
      out.field = ctx.get_as<std::string>(2);
    }
    if (out.code.empty())
      out.code = "error";
    return out;
  }
  if (err.category() == caf::atom("system")) {
    auto code = static_cast<caf::sec>(err.code());
    if (code == caf::sec::request_timeout) {
      out.status = 503;
      out.code = "timeout";
      out.message = "the node did not answer in time; retry";
      return out;
    }
    if (code == caf::sec::request_receiver_down) {
      out.status = 503;
      out.code = "unavailable";
      out.message = "the owner of this data is restarting; retry";
      return out;
    }
  }
  out.status = 500;
  out.code = "internal";
  out.message = "internal error";
  return out;
}

} // namespace crmsync
