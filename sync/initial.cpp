#include "sync/initial.hpp"

#include <algorithm>
#include <utility>

#include "sync/graph_event.hpp"

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

} // namespace crmsync::sync
