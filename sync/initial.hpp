// The initial sync's decisions (R16-R19): which CRM events go to Office 365
// when a user's sync is enabled, in which order, and how they are cut into
// $batch rounds.
//
// Pure functions over records; no I/O. The caller (the sync engine) reads
// the candidates, skips those already linked (a resumed initial sync) and
// sends the rounds. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "graph/client.hpp"
#include "protocol/ids.hpp"
#include "protocol/records.hpp"
#include "protocol/sync.hpp"
#include "sync/graph_request.hpp"

namespace crmsync::sync {

/// Graph's limit of requests in one $batch.
inline constexpr size_t batch_limit = 20;

/// R16-R19: of `candidates`, the events `owner` owns that are eligible
/// (not bulk-imported and never edited since); future ones first (ending
/// after `now_ms`) by start, soonest first, then past ones by end, most
/// recent first; at most `cap` of them. Ties keep the CRM's id order, so
/// a resumed initial sync sees the same order.
std::vector<event_record>
initial_selection(std::vector<event_record> candidates, user_id owner,
                  int64_t now_ms, size_t cap);

/// The creates for `todo` (with transactionId and crmsync's tag), in its
/// order, cut into $batch rounds of at most `batch_limit`: round n holds
/// todo[n * batch_limit ...].
std::vector<std::vector<graph_request>>
initial_rounds(const std::vector<event_record>& todo,
               const calendar_paths& paths);

/// What one answered $batch of the initial sync means, item by item:
/// `sent` are the events of the batch in request order, `answers` Graph's
/// answers in the same order.
struct initial_batch_outcome {
  /// Created in Office 365: the links to store.
  std::vector<sync_link> linked;
  /// Refused for good (a bad property, too large): skipped, listed in the
  /// user's status, counted done; the others go on.
  std::vector<std::pair<event_record, graph::error>> refused;
  /// The product calendar is gone (R21): the round stops.
  bool calendar_gone = false;
  /// Blocked, throttled beyond the client's retries, or down: not done,
  /// sent again by the next run; the round stops (the first such error).
  std::optional<graph::error> failure;
};

initial_batch_outcome
judge_initial_batch(const std::vector<event_record>& sent,
                    const std::vector<graph::batch_response>& answers);

} // namespace crmsync::sync
