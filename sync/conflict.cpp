#include "sync/conflict.hpp"

namespace crmsync::sync {

const char* to_string(side x) {
  return x == side::crm ? "crm" : "office365";
}

side conflict_winner(conflict_policy policy, int64_t crm_modified_ms,
                     int64_t office365_modified_ms) {
  switch (policy) {
    case conflict_policy::crm:
      return side::crm;
    case conflict_policy::office365:
      return side::office365;
    default:
      return crm_modified_ms >= office365_modified_ms ? side::crm
                                                      : side::office365;
  }
}

conflict_resolution
resolve_conflict(conflict_policy policy, user_id user, const event_record& ours,
                 const sync_link& link, const graph_event& theirs,
                 const calendar_paths& paths, int64_t now_ms) {
  conflict_resolution out;
  out.winner = conflict_winner(policy, ours.modified_ms, theirs.modified_ms);
  auto& r = out.record;
  r.user = user;
  r.event = ours.id;
  r.graph_id = link.graph_id;
  r.at_ms = now_ms;
  r.policy = to_string(policy);
  r.winner = to_string(out.winner);
  if (out.winner == side::crm) {
    r.kept = summary(ours);
    r.lost = summary(theirs.content);
    out.patch = graph_request{"PATCH",
                              paths.event(link.graph_id),
                              to_graph(ours, false),
                              {{"If-Match", if_match(theirs.change_key)}}};
  } else {
    r.kept = summary(theirs.content);
    r.lost = summary(ours);
    out.apply.owner = user;
    out.apply.event = ours.id;
    out.apply.content = theirs.content;
  }
  return out;
}

} // namespace crmsync::sync
