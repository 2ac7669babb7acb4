// Classification of Graph's errors (sync/errors.hpp): what the sync does
// about each status and code Graph and Outlook send.
#include <catch2/catch.hpp>

#include <string>

#include "sync/errors.hpp"

using namespace crmsync::sync;

namespace {

std::string what(int status, std::string_view code,
                 target about = target::event) {
  return to_string(classify(status, code, about).what);
}

std::string reason(int status, std::string_view code,
                   target about = target::event) {
  return std::string{classify(status, code, about).reason};
}

} // namespace

TEST_CASE("access and mailbox errors block the user, whatever the status",
          "[sync][errors]") {
  // Outlook's and Graph's spellings of an access policy's refusal.
  CHECK(what(403, "ErrorAccessDenied") == "blocked");
  CHECK(reason(403, "ErrorAccessDenied") == "access_denied");
  CHECK(reason(403, "accessDenied", target::calendar) == "access_denied");
  // A mailbox without Exchange Online answers 404: not a deleted calendar.
  CHECK(what(404, "MailboxNotEnabledForRESTAPI", target::calendar)
        == "blocked");
  CHECK(reason(404, "MailboxNotEnabledForRESTAPI") == "mailbox_not_enabled");
  // A 400 naming the mailbox refuses no event.
  CHECK(reason(400, "ErrorInvalidUser") == "mailbox_not_enabled");
  // An unavailable store comes as 500 or 503: the mailbox, not Graph.
  CHECK(reason(503, "ErrorMailboxStoreUnavailable") == "mailbox_unavailable");
  CHECK(reason(500, "ErrorMailboxMoveInProgress") == "mailbox_unavailable");
  CHECK(reason(507, "") == "mailbox_unavailable");
  // Codes are compared without regard to case.
  CHECK(reason(403, "erroraccessdenied") == "access_denied");
}

TEST_CASE("a refused token blocks the user, never an event", "[sync][errors]") {
  // 401 reaches the sync only after the client renewed the token once.
  CHECK(reason(401, "InvalidAuthenticationToken") == "unauthorized");
  CHECK(reason(401, "") == "unauthorized");
  // The identity platform refuses a token with 400s: consent revoked, app
  // secret expired. Not the event's fault.
  CHECK(what(400, "unauthorized_client") == "blocked");
  CHECK(reason(400, "invalid_client") == "unauthorized");
  CHECK(reason(400, "invalid_grant") == "unauthorized");
  // Any other 403 is a block too, under its own reason.
  CHECK(reason(403, "Forbidden") == "forbidden");
}

TEST_CASE("only an event Graph can never accept is refused", "[sync][errors]") {
  CHECK(what(400, "ErrorInvalidRequest") == "item_refused");
  CHECK(what(400, "ErrorInvalidProperty") == "item_refused");
  CHECK(what(400, "ErrorOccurrenceCrossingBoundary") == "item_refused");
  CHECK(what(413, "") == "item_refused");
  CHECK(what(422, "") == "item_refused");
  CHECK(classify(400, "ErrorInvalidProperty", target::event).reason.empty());
  // The same statuses about the calendar, its delta or its subscription
  // refuse no event: retried.
  CHECK(what(400, "ErrorInvalidRequest", target::calendar) == "transient");
  CHECK(what(400, "ExtensionError", target::calendar) == "transient");
}

TEST_CASE("outages and throttling are retried", "[sync][errors]") {
  CHECK(what(429, "TooManyRequests") == "throttled");
  CHECK(what(429, "ApplicationThrottled", target::calendar) == "throttled");
  CHECK(what(503, "ServiceUnavailable") == "throttled");
  CHECK(what(509, "") == "throttled");
  CHECK(what(0, "transport") == "transient");
  CHECK(what(0, "shutting_down") == "transient");
  CHECK(what(500, "InternalServerError") == "transient");
  CHECK(what(502, "") == "transient");
  CHECK(what(504, "") == "transient");
  // A changeKey mismatch is re-read, never dropped.
  CHECK(what(412, "ErrorIrresolvableConflict") == "transient");
  CHECK(what(409, "ErrorIrresolvableConflict") == "transient");
  CHECK(what(410, "SyncStateNotFound", target::calendar) == "transient");
  CHECK(classify(503, "ServiceUnavailable", target::event).reason.empty());
}

TEST_CASE("a missing resource is gone", "[sync][errors]") {
  CHECK(what(404, "ErrorItemNotFound", target::calendar) == "gone");
  CHECK(what(404, "ResourceNotFound", target::calendar) == "gone");
  CHECK(what(404, "itemNotFound") == "gone");
}

TEST_CASE("a $batch item's error is read from its body", "[sync][errors]") {
  crmsync::graph::batch_response item;
  item.id = "3";
  item.status = 400;
  item.body = R"({"error":{"code":"ErrorInvalidProperty","message":"bad",)"
              R"("innerError":{"request-id":"x"}}})";
  auto e = item_error(item);
  CHECK(e.status == 400);
  CHECK(e.code == "ErrorInvalidProperty");
  CHECK(e.message == "bad");
  CHECK(what(e.status, e.code) == "item_refused");
  // No body, or not Graph's shape: the status alone.
  item.status = 403;
  item.body = "";
  CHECK(item_error(item).code.empty());
  CHECK(to_string(classify(item_error(item), target::event).what)
        == std::string{"blocked"});
  item.body = "not json";
  CHECK(item_error(item).status == 403);
  CHECK(item_error(item).code.empty());
}
