// graph-emulator: recurring series (a patternedRecurrence read from a body,
// the occurrences it expands to, exceptions and cancelled occurrences).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "emulator/model.hpp"
#include "emulator/service_impl.hpp"

namespace crmsync::emulator {

/// Reads a patternedRecurrence of any of Graph's patterns, checked as
/// Graph checks it (400 ErrorInvalidRecurrence otherwise).
bool read_recurrence(element v, recurrence_rule& out, body_error& err);

/// The occurrences of a series master overlapping [from, to): copies of the
/// master with their own id, times, iCalUId and originalStart. Bounded, so
/// that an endless series over a wide window cannot run away.
std::vector<event> expand_series(const event& master, int64_t from, int64_t to);

/// A series' occurrences as the calendar shows them: exceptions (edited
/// occurrences) in place of their occurrence, cancelled ones left out.
std::vector<event> occurrences_of(const calendar& c, const event& master,
                                  int64_t from, int64_t to);

/// The occurrence `id` ("{master}_{yyyymmdd}") of a series in the mailbox
/// as the calendar shows it, or nullopt (no such series, date or a
/// cancelled one). `master` is set to the series master when found.
std::optional<event> find_occurrence(const mailbox& mb, const calendar* cal,
                                     const std::string& id,
                                     const event** master);

/// What a calendarView shows of a calendar in [from, to): single events
/// that overlap, and the occurrences of series (never their masters).
template <class Overlaps>
std::vector<event> instances_in(const mailbox& mb, const calendar& c,
                                int64_t from, int64_t to, Overlaps overlaps) {
  std::vector<event> out;
  for (auto& id : c.event_ids) {
    auto& e = mb.events.at(id);
    if (e.recurrence.active) {
      auto occurrences = occurrences_of(c, e, from, to);
      std::move(occurrences.begin(), occurrences.end(),
                std::back_inserter(out));
    } else if (overlaps(e, from, to)) {
      out.push_back(e);
    }
  }
  return out;
}
} // namespace crmsync::emulator
