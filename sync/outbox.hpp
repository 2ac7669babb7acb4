// The outbox's decisions: what crmsync sends Office 365 for one pending CRM
// change (create, update with If-Match, delete, or nothing), and what
// Graph's answer to it leads to.
//
// Pure functions over records; no I/O. The caller (the sync engine) reads
// the event and its link, sends the request and stores the outcome; it
// classifies the errors left over (push_next::error). Thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "protocol/records.hpp"
#include "protocol/sync.hpp"
#include "sync/graph_request.hpp"

namespace crmsync::sync {

enum class push_kind : uint8_t {
  none,   ///< nothing to send (see plan_push)
  create, ///< POST with transactionId and crmsync's tag
  update, ///< PATCH with If-Match the link's changeKey
  remove, ///< DELETE; the link goes
};

struct push_plan {
  push_kind kind = push_kind::none;
  graph_request request; ///< empty for push_kind::none
};

/// One outbox entry. `event`: the CRM event, nullptr when it is gone;
/// `link`: its link to Office 365, nullptr when it has none. Nothing is
/// sent for the deletion of an unlinked event, for an imported event, or
/// for a version Office 365 holds already.
push_plan plan_push(const sync_change& change, const event_record* event,
                    const sync_link* link, const calendar_paths& paths);

enum class push_next : uint8_t {
  done,          ///< stored: the link follows (a delete drops it)
  conflict,      ///< 412: changed in Outlook too; re-read it (GET) and let
                 ///< the tenant's policy choose (sync/conflict.hpp)
  recreate,      ///< update met 404: deleted in Outlook, the CRM's later
                 ///< edit brings it back (drop the link, create)
  calendar_gone, ///< create met 404: the product calendar is gone (R21)
  error,         ///< any other failure: the caller classifies it
};

/// What the HTTP status of Graph's answer to a `kind` push leads to (0:
/// no answer). A delete that meets 404 is done: the event is gone anyway.
push_next after_push(push_kind kind, int status);

/// The CRM version a link records for `sent` once Graph answered its
/// create with `answer` (the 201's body). Graph answers a create whose
/// transactionId it knows with the event that first create made, as it is:
/// when an earlier attempt's answer was lost (its node died before it
/// stored the link) and the CRM event changed since, that event holds an
/// older version. Then the answer's content is not sent's and this is
/// sent's version - 1, so the outbox sends sent's content as an update
/// (If-Match the answer's changeKey). Otherwise (sent's content, or an
/// answer without the event's fields) sent's version.
uint64_t created_version(const event_record& sent, std::string_view answer);

} // namespace crmsync::sync
