#include "sync/errors.hpp"

#include <cctype>

#include <simdjson.h>

namespace crmsync::sync {

namespace {

bool same_code(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

struct blocking_code {
  std::string_view code;
  std::string_view reason;
};

/// Codes that say the mailbox cannot be reached now, whatever the status
/// (Outlook sends some of them as 400, 404, 500 or 503). Graph's own codes
/// are camelCase, Outlook's PascalCase, OAuth's snake_case; compared
/// without regard to case.
constexpr blocking_code blocking_codes[] = {
    // An application access policy or an admin's block (403).
    {"ErrorAccessDenied", "access_denied"},
    {"accessDenied", "access_denied"},
    {"Authorization_RequestDenied", "access_denied"},
    {"ErrorAccessDeniedByPolicy", "access_denied"},
    // No Exchange Online mailbox: no licence, a guest, on-premises (404).
    {"MailboxNotEnabledForRESTAPI", "mailbox_not_enabled"},
    {"MailboxNotSupportedForRESTAPI", "mailbox_not_enabled"},
    {"ErrorNonExistentMailbox", "mailbox_not_enabled"},
    {"ErrorInvalidUser", "mailbox_not_enabled"},
    // The user (a directory object) is gone: deleted in Office 365.
    {"Request_ResourceNotFound", "mailbox_not_enabled"},
    // The mailbox is there but cannot take requests for a while.
    {"ErrorMailboxStoreUnavailable", "mailbox_unavailable"},
    {"ErrorMailboxMoveInProgress", "mailbox_unavailable"},
    {"MailboxInfoStale", "mailbox_unavailable"},
    {"ErrorQuotaExceeded", "mailbox_unavailable"},
    // The token is refused even after renewal (the client renews once on
    // 401), or the identity platform will not issue one (consent revoked,
    // secret expired): its answers are 400s that refuse no event.
    {"InvalidAuthenticationToken", "unauthorized"},
    {"unauthenticated", "unauthorized"},
    {"invalid_client", "unauthorized"},
    {"unauthorized_client", "unauthorized"},
    {"invalid_grant", "unauthorized"},
    {"consent_required", "unauthorized"},
    {"interaction_required", "unauthorized"},
};

} // namespace

classified classify(int status, std::string_view code, target about) {
  for (auto& b : blocking_codes)
    if (same_code(code, b.code))
      return {disposition::blocked, b.reason};
  switch (status) {
    case 401:
      return {disposition::blocked, "unauthorized"};
    case 403:
      return {disposition::blocked, "forbidden"};
    case 507: // the mailbox is full
      return {disposition::blocked, "mailbox_unavailable"};
    case 404:
      return {disposition::gone, {}};
    case 429:
    case 503:
    case 509:
      return {disposition::throttled, {}};
    case 400:
    case 413:
    case 422:
      // About one event: that event is refused. About the calendar, its
      // delta or subscription: no event is at fault, and retrying later
      // keeps every change.
      if (about == target::event)
        return {disposition::item_refused, {}};
      return {disposition::transient, {}};
    default:
      // Transport failures (0), 5xx, conflicts (409, 412: re-read on the
      // next run), 410 (the delta round restarts where it is read) and
      // anything unknown: retried, nothing dropped.
      return {disposition::transient, {}};
  }
}

const char* to_string(disposition d) {
  switch (d) {
    case disposition::transient:
      return "transient";
    case disposition::throttled:
      return "throttled";
    case disposition::blocked:
      return "blocked";
    case disposition::item_refused:
      return "item_refused";
    case disposition::gone:
      return "gone";
  }
  return "transient";
}

graph::error item_error(const graph::batch_response& item) {
  graph::error e;
  e.status = item.status;
  e.attempts = 1;
  simdjson::dom::parser parser;
  simdjson::dom::element doc, err;
  if (item.body.empty() || parser.parse(item.body).get(doc)
      || doc["error"].get(err))
    return e;
  std::string_view sv;
  if (!err["code"].get_string().get(sv))
    e.code = std::string{sv};
  if (!err["message"].get_string().get(sv))
    e.message = std::string{sv};
  return e;
}

} // namespace crmsync::sync
