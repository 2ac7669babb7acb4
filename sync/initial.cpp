#include "sync/initial.hpp"

#include <algorithm>
#include <utility>

#include "sync/errors.hpp"
#include "sync/graph_event.hpp"
#include "sync/outbox.hpp"

namespace crmsync::sync {

std::vector<event_record>
initial_selection(std::vector<event_record> candidates, user_id owner,
                  int64_t now_ms, size_t cap) {
  std::vector<event_record> future;
  std::vector<event_record> past;
  for (auto& e : candidates) {
    if (e.owner != owner || e.origin == event_origin::imported)
      continue;
    (e.end_ms > now_ms ? future : past).push_back(std::move(e));
  }
  std::sort(future.begin(), future.end(),
            [](const event_record& a, const event_record& b) {
              if (a.start_ms != b.start_ms)
                return a.start_ms < b.start_ms;
              return a.id.value < b.id.value;
            });
  std::sort(past.begin(), past.end(),
            [](const event_record& a, const event_record& b) {
              if (a.end_ms != b.end_ms)
                return a.end_ms > b.end_ms;
              return a.id.value < b.id.value;
            });
  auto chosen = std::move(future);
  for (auto& e : past) {
    if (chosen.size() >= cap)
      break;
    chosen.push_back(std::move(e));
  }
  if (chosen.size() > cap)
    chosen.resize(cap);
  return chosen;
}

std::vector<std::vector<graph_request>>
initial_rounds(const std::vector<event_record>& todo,
               const calendar_paths& paths) {
  std::vector<std::vector<graph_request>> rounds;
  for (size_t first = 0; first < todo.size(); first += batch_limit) {
    auto last = std::min(todo.size(), first + batch_limit);
    std::vector<graph_request> round;
    for (size_t k = first; k < last; ++k)
      round.push_back(
          graph_request{"POST", paths.events(), to_graph(todo[k], true), {}});
    rounds.push_back(std::move(round));
  }
  return rounds;
}

initial_batch_outcome
judge_initial_batch(const std::vector<event_record>& sent,
                    const std::vector<graph::batch_response>& answers) {
  initial_batch_outcome out;
  for (size_t k = 0; k < answers.size() && k < sent.size(); ++k) {
    auto& a = answers[k];
    auto& e = sent[k];
    std::string gid, ck;
    if (a.status >= 200 && a.status < 300
        && read_id_and_change_key(a.body, gid, ck)) {
      // An older version (a create Graph knew by its transactionId, made
      // before the event changed) is linked as such: the outbox row of the
      // change sends the CRM's version once the user is active.
      out.linked.push_back(
          sync_link{e.id, gid, ck, created_version(e, a.body)});
      continue;
    }
    auto err = item_error(a);
    if (classify(err, target::calendar).what == disposition::gone)
      out.calendar_gone = true;
    else if (classify(err, target::event).what == disposition::item_refused)
      out.refused.emplace_back(e, err);
    else if (!out.failure)
      out.failure = err;
  }
  return out;
}

} // namespace crmsync::sync
