#include "emulator/recurrence.hpp"

#include <algorithm>

#include "common/text.hpp"
#include "common/time_format.hpp"
#include "emulator/time_zones.hpp"

namespace crmsync::emulator {

/// Reads a patternedRecurrence; the emulator expands daily and weekly
/// patterns and refuses the others with a clear message.
bool read_recurrence(element v, recurrence_rule& out, body_error& err) {
  static const char* days[] = {"sunday",   "monday", "tuesday", "wednesday",
                               "thursday", "friday", "saturday"};
  auto day_index = [&](std::string_view name) {
    for (unsigned i = 0; i < 7; ++i)
      if (ascii_lower(name) == days[i])
        return static_cast<int>(i);
    return -1;
  };
  err.code = "ErrorInvalidRecurrence";
  recurrence_rule r;
  object o, pattern, range;
  std::string_view type, range_type, start, end;
  if (v.get_object().get(o) || o["pattern"].get_object().get(pattern)
      || o["range"].get_object().get(range)
      || pattern["type"].get_string().get(type)
      || range["type"].get_string().get(range_type)
      || range["startDate"].get_string().get(start)) {
    err.message = "A recurrence needs pattern.type, range.type and "
                  "range.startDate.";
    return false;
  }
  if (type != "daily" && type != "weekly") {
    err.message = "This emulator expands daily and weekly recurrences only, "
                  "not '"
                  + std::string{type} + "'.";
    return false;
  }
  r.weekly = type == "weekly";
  int64_t interval = 1;
  if (!pattern["interval"].get_int64().get(interval) && interval < 1) {
    err.message = "The recurrence interval must be at least 1.";
    return false;
  }
  r.interval = interval;
  simdjson::dom::array list;
  if (!pattern["daysOfWeek"].get_array().get(list))
    for (element d : list) {
      std::string_view name;
      int i = d.get_string().get(name) ? -1 : day_index(name);
      if (i < 0) {
        err.message = "daysOfWeek holds an unknown day.";
        return false;
      }
      r.days_mask |= 1u << i;
    }
  std::string_view first;
  if (!pattern["firstDayOfWeek"].get_string().get(first)) {
    int i = day_index(first);
    if (i < 0) {
      err.message = "firstDayOfWeek is not a day.";
      return false;
    }
    r.first_day = static_cast<unsigned>(i);
  }
  if (r.weekly && r.days_mask == 0) {
    err.message = "A weekly recurrence needs daysOfWeek.";
    return false;
  }
  auto start_ms = parse_date_ms(start);
  if (!start_ms) {
    err.message = "range.startDate must be a date (YYYY-MM-DD).";
    return false;
  }
  r.start_day = *start_ms / 86'400'000;
  if (range_type == "endDate") {
    std::optional<int64_t> end_ms;
    if (!range["endDate"].get_string().get(end))
      end_ms = parse_date_ms(end);
    if (!end_ms || *end_ms < *start_ms) {
      err.message = "range.endDate must be a date on or after startDate.";
      return false;
    }
    r.end_day = *end_ms / 86'400'000;
  } else if (range_type == "numbered") {
    if (range["numberOfOccurrences"].get_int64().get(r.occurrences)
        || r.occurrences < 1) {
      err.message = "range.numberOfOccurrences must be at least 1.";
      return false;
    }
  } else if (range_type != "noEnd") {
    err.message = "range.type must be endDate, noEnd or numbered.";
    return false;
  }
  r.json = to_json_text(v);
  r.active = true;
  out = std::move(r);
  return true;
}

/// The occurrences of a series master overlapping [from, to): copies of the
/// master with their own id, times, iCalUId and originalStart. Bounded, so
/// that an endless series over a wide window cannot run away.
std::vector<event> expand_series(const event& master, int64_t from,
                                 int64_t to) {
  constexpr int64_t day_ms = 86'400'000;
  constexpr size_t max_occurrences = 2000;
  std::vector<event> out;
  const auto& rule = master.recurrence;
  int64_t local_start = master.start_ms;
  utc_to_local(master.start_time_zone, master.start_ms, local_start);
  int64_t time_of_day = ((local_start % day_ms) + day_ms) % day_ms;
  int64_t duration = master.end_ms - master.start_ms;
  int64_t count = 0;
  // Candidate days in order: every interval-th day, or the chosen days of
  // every interval-th week (weeks begin on first_day).
  auto weekday = [](int64_t day) { // 1970-01-01 was a Thursday
    return static_cast<unsigned>(((day % 7) + 7 + 4) % 7);
  };
  int64_t week_start = rule.start_day
                       - static_cast<int64_t>(
                           (weekday(rule.start_day) + 7 - rule.first_day) % 7);
  for (int64_t step = 0; step < 200000 && out.size() < max_occurrences;
       ++step) {
    int64_t day;
    if (rule.weekly) {
      int64_t week = step / 7;
      unsigned slot = static_cast<unsigned>(step % 7);
      day = week_start + week * 7 * rule.interval + slot;
      if (((rule.days_mask >> ((rule.first_day + slot) % 7)) & 1u) == 0)
        continue;
      if (day < rule.start_day)
        continue;
    } else {
      day = rule.start_day + step * rule.interval;
    }
    if (rule.end_day >= 0 && day > rule.end_day)
      break;
    if (rule.occurrences > 0 && count >= rule.occurrences)
      break;
    ++count;
    int64_t start = day * day_ms + time_of_day;
    local_to_utc(master.start_time_zone, start, start);
    if (start >= to)
      break;
    if (start + duration <= from && !(duration == 0 && start >= from))
      continue;
    event occ = master;
    auto date = format_date(day * day_ms);
    date.erase(std::remove(date.begin(), date.end(), '-'), date.end());
    occ.id = master.id + "_" + date;
    occ.ical_uid = master.ical_uid + date;
    occ.start_ms = start;
    occ.end_ms = start + duration;
    occ.recurrence = recurrence_rule{};
    occ.series_master_id = master.id;
    occ.original_start_ms = start;
    out.push_back(std::move(occ));
  }
  return out;
}

/// A series' occurrences as the calendar shows them: exceptions (edited
/// occurrences) in place of their occurrence, cancelled ones left out.
std::vector<event> occurrences_of(const calendar& c, const event& master,
                                  int64_t from, int64_t to) {
  std::vector<event> out;
  for (auto& occ : expand_series(master, from, to)) {
    if (c.cancelled.count(occ.id))
      continue;
    auto x = c.exceptions.find(occ.id);
    out.push_back(x == c.exceptions.end() ? std::move(occ) : x->second);
  }
  return out;
}

/// The occurrence `id` ("{master}_{yyyymmdd}") of a series in the mailbox
/// as the calendar shows it, or nullopt (no such series, date or a
/// cancelled one). `master` is set to the series master when found.
std::optional<event> find_occurrence(const mailbox& mb, const calendar* cal,
                                     const std::string& id,
                                     const event** master) {
  auto bar = id.rfind('_');
  if (bar == std::string::npos || id.size() - bar != 9)
    return std::nullopt;
  auto m = mb.events.find(id.substr(0, bar));
  if (m == mb.events.end() || !m->second.recurrence.active)
    return std::nullopt;
  const calendar* c = cal;
  for (auto& candidate : mb.calendars)
    if (c == nullptr && candidate.id == m->second.calendar_id)
      c = &candidate;
  if (c == nullptr || c->id != m->second.calendar_id)
    return std::nullopt;
  auto day_at
      = parse_date_ms(id.substr(bar + 1, 4) + "-" + id.substr(bar + 5, 2) + "-"
                      + id.substr(bar + 7, 2));
  if (!day_at)
    return std::nullopt;
  int64_t day = *day_at;
  constexpr int64_t day_ms = 86'400'000;
  for (auto& occ :
       occurrences_of(*c, m->second, day - 2 * day_ms, day + 3 * day_ms))
    if (occ.id == id) {
      *master = &m->second;
      return occ;
    }
  return std::nullopt;
}
} // namespace crmsync::emulator
