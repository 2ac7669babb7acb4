// What the sync does about a failed Graph call: Graph's answer (HTTP status
// and Graph or OAuth error code) classified into one disposition.
//
// Pure functions, thread-safe. The codes come from Graph's error
// documentation and what Outlook returns in practice
// (shared/ref/GRAPH-FACTS.md §6 and §11): a code names the cause better than
// the status, so it is looked at first (a 404 MailboxNotEnabledForRESTAPI is
// a mailbox without Exchange Online, not a deleted calendar; a 503
// ErrorMailboxStoreUnavailable is the mailbox, not Graph, being away).
#pragma once

#include <string>
#include <string_view>

#include "graph/client.hpp"

namespace crmsync::sync {

enum class disposition {
  /// Graph or the network failed for a moment: retry with backoff.
  transient,
  /// Graph asks to slow down (429, 503): retry after Retry-After.
  throttled,
  /// The app may not reach the mailbox now (access denied by policy, no
  /// licence, token refused, mailbox unavailable): keep every change, put
  /// the user's sync in "error", retry with backoff, alert an admin.
  blocked,
  /// This one event can never be accepted as it is (bad property, too
  /// large, unprocessable): skip it, record it, go on with the others.
  item_refused,
  /// What the call addressed is gone (the calendar, its delta or its
  /// subscription: R21; an event: deleted in Outlook).
  gone,
};

/// What a failed call was about: a 400 on one event refuses that event; a
/// 400 on the calendar, its delta or subscription refuses no event.
enum class target { event, calendar };

struct classified {
  disposition what = disposition::transient;
  /// For `blocked`: the alert's reason, one of "access_denied",
  /// "unauthorized", "mailbox_not_enabled", "mailbox_unavailable",
  /// "forbidden" (a fixed set: it is a metric label). "" otherwise.
  std::string_view reason;
};

classified classify(int status, std::string_view code, target about);

inline classified classify(const graph::error& e, target about) {
  return classify(e.status, e.code, about);
}

/// "transient", "throttled", "blocked", "item_refused" or "gone".
const char* to_string(disposition d);

/// The error one item of a $batch answered: its status, and the code and
/// message of its `{"error":{...}}` body (empty when it has none).
graph::error item_error(const graph::batch_response& item);

} // namespace crmsync::sync
