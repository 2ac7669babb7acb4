#include "emulator/recurrence.hpp"

#include <algorithm>
#include <date/date.h>
#include <set>

#include "common/text.hpp"
#include "common/time_format.hpp"
#include "emulator/time_zones.hpp"
#include "protocol/json.hpp"

namespace crmsync::emulator {

namespace {

constexpr int64_t day_ms = 86'400'000;

const char* const day_names[] = {"sunday",   "monday", "tuesday", "wednesday",
                                 "thursday", "friday", "saturday"};
const char* const index_names[]
    = {"first", "second", "third", "fourth", "last"};

int name_index(std::string_view name, const char* const* names, int n) {
  auto lower = ascii_lower(name);
  for (int i = 0; i < n; ++i)
    if (lower == names[i])
      return i;
  return -1;
}

/// The civil date of a day since 1970-01-01.
void civil_from_days(int64_t z, int64_t& y, int64_t& m, int64_t& d) {
  date::year_month_day ymd{date::sys_days{date::days{z}}};
  y = static_cast<int>(ymd.year());
  m = static_cast<unsigned>(ymd.month());
  d = static_cast<unsigned>(ymd.day());
}

int64_t days_in_month(int64_t y, int64_t m) {
  date::year_month_day_last last{
      date::year{static_cast<int>(y)},
      date::month_day_last{date::month{static_cast<unsigned>(m)}}};
  return static_cast<unsigned>(last.day());
}

unsigned weekday(int64_t day) { // 1970-01-01 was a Thursday
  return static_cast<unsigned>(((day % 7) + 7 + 4) % 7);
}

/// The day a monthly or yearly pattern picks in month `m` of year `y`:
/// dayOfMonth (the month's last day when it is shorter), or the index-th
/// day of the month that is one of daysOfWeek.
int64_t day_in_month(const recurrence_rule& r, int64_t y, int64_t m,
                     bool relative) {
  auto first = days_from_civil(y, static_cast<unsigned>(m), 1);
  auto length = days_in_month(y, m);
  if (!relative)
    return first + std::min<int64_t>(r.day_of_month, length) - 1;
  std::vector<int64_t> matching;
  for (int64_t d = 0; d < length; ++d)
    if ((r.days_mask >> weekday(first + d)) & 1u)
      matching.push_back(first + d);
  if (r.index == 4 || static_cast<size_t>(r.index) >= matching.size())
    return matching.back();
  return matching[static_cast<size_t>(r.index)];
}

/// The candidate days of the `period`-th period of a pattern (a day, a
/// week, a month or a year, every interval-th), in order.
std::vector<int64_t> period_days(const recurrence_rule& r, int64_t period) {
  std::vector<int64_t> out;
  int64_t y = 0, m = 0, d = 0;
  civil_from_days(r.start_day, y, m, d);
  if (r.type == "daily") {
    out.push_back(r.start_day + period * r.interval);
  } else if (r.type == "weekly") {
    int64_t week_start
        = r.start_day
          - static_cast<int64_t>((weekday(r.start_day) + 7 - r.first_day) % 7);
    for (unsigned slot = 0; slot < 7; ++slot)
      if ((r.days_mask >> ((r.first_day + slot) % 7)) & 1u)
        out.push_back(week_start + period * 7 * r.interval + slot);
  } else if (r.type == "absoluteMonthly" || r.type == "relativeMonthly") {
    int64_t months = (m - 1) + period * r.interval;
    out.push_back(day_in_month(r, y + months / 12, months % 12 + 1,
                               r.type == "relativeMonthly"));
  } else { // absoluteYearly, relativeYearly
    out.push_back(day_in_month(r, y + period * r.interval, r.month,
                               r.type == "relativeYearly"));
  }
  return out;
}

/// The patternedRecurrence as Graph shows it: every property, unused ones
/// with their defaults.
std::string recurrence_json(const recurrence_rule& r) {
  json::writer w;
  w.begin_object().key("pattern").begin_object();
  w.key("type").value(r.type);
  w.key("interval").value(r.interval);
  w.key("month").value(int64_t{r.month});
  w.key("dayOfMonth").value(int64_t{r.day_of_month});
  w.key("daysOfWeek").begin_array();
  for (unsigned i = 0; i < 7; ++i)
    if ((r.days_mask >> i) & 1u)
      w.value(day_names[i]);
  w.end_array();
  w.key("firstDayOfWeek").value(day_names[r.first_day]);
  w.key("index").value(index_names[r.index]);
  w.end_object().key("range").begin_object();
  w.key("type").value(r.range_type);
  w.key("startDate").value(format_date(r.start_day * day_ms));
  w.key("endDate").value(r.end_day >= 0 ? format_date(r.end_day * day_ms)
                                        : std::string{"0001-01-01"});
  w.key("recurrenceTimeZone").value(r.time_zone);
  w.key("numberOfOccurrences").value(r.occurrences);
  w.end_object().end_object();
  return w.take();
}

} // namespace

/// Reads a patternedRecurrence, checked as Graph checks it: each pattern
/// type with the properties it needs (daysOfWeek for weekly and relative
/// patterns, dayOfMonth for absolute ones, month for yearly ones), values
/// in range, and a range of a known type.
bool read_recurrence(element v, recurrence_rule& out, body_error& err) {
  err.code = "ErrorInvalidRecurrence";
  auto fail = [&](std::string message) {
    err.message = std::move(message);
    return false;
  };
  recurrence_rule r;
  object o, pattern, range;
  std::string_view type, range_type, start, end;
  if (v.get_object().get(o) || o["pattern"].get_object().get(pattern)
      || o["range"].get_object().get(range)
      || pattern["type"].get_string().get(type)
      || range["type"].get_string().get(range_type)
      || range["startDate"].get_string().get(start))
    return fail("A recurrence needs pattern.type, range.type and "
                "range.startDate.");
  static const std::set<std::string_view> types{
      "daily",           "weekly",         "absoluteMonthly",
      "relativeMonthly", "absoluteYearly", "relativeYearly"};
  if (types.count(type) == 0) {
    err.code = "RequestBodyRead";
    return fail("Cannot convert the literal '" + std::string{type}
                + "' to the expected type "
                  "'microsoft.graph.recurrencePatternType'.");
  }
  r.type = std::string{type};
  bool relative = r.type == "relativeMonthly" || r.type == "relativeYearly";
  bool absolute = r.type == "absoluteMonthly" || r.type == "absoluteYearly";
  bool yearly = r.type == "absoluteYearly" || r.type == "relativeYearly";
  element x;
  if (!pattern["interval"].get(x) && !x.is_null()
      && (x.get_int64().get(r.interval) || r.interval < 1 || r.interval > 999))
    return fail("The recurrence interval must be a number from 1 to 999.");
  simdjson::dom::array list;
  if (!pattern["daysOfWeek"].get_array().get(list))
    for (element d : list) {
      std::string_view name;
      int i = d.get_string().get(name) ? -1 : name_index(name, day_names, 7);
      if (i < 0)
        return fail("daysOfWeek holds an unknown day.");
      r.days_mask |= 1u << i;
    }
  std::string_view text;
  if (!pattern["firstDayOfWeek"].get_string().get(text)) {
    int i = name_index(text, day_names, 7);
    if (i < 0)
      return fail("firstDayOfWeek is not a day.");
    r.first_day = static_cast<unsigned>(i);
  }
  if (!pattern["index"].get_string().get(text)) {
    r.index = name_index(text, index_names, 5);
    if (r.index < 0)
      return fail("index must be first, second, third, fourth or last.");
  }
  int64_t number = 0;
  if (!pattern["dayOfMonth"].get_int64().get(number)) {
    if (number < 0 || number > 31)
      return fail("dayOfMonth must be from 1 to 31.");
    r.day_of_month = static_cast<int>(number);
  }
  if (!pattern["month"].get_int64().get(number)) {
    if (number < 0 || number > 12)
      return fail("month must be from 1 to 12.");
    r.month = static_cast<int>(number);
  }
  if ((r.type == "weekly" || relative) && r.days_mask == 0)
    return fail("A " + r.type + " recurrence needs daysOfWeek.");
  if (absolute && r.day_of_month == 0)
    return fail("A " + r.type + " recurrence needs dayOfMonth.");
  if (yearly && r.month == 0)
    return fail("A " + r.type + " recurrence needs month.");
  auto start_ms = parse_date_ms(start);
  if (!start_ms)
    return fail("range.startDate must be a date (YYYY-MM-DD).");
  r.start_day = *start_ms / day_ms;
  r.range_type = std::string{range_type};
  if (range_type == "endDate") {
    std::optional<int64_t> end_ms;
    if (!range["endDate"].get_string().get(end))
      end_ms = parse_date_ms(end);
    if (!end_ms || *end_ms < *start_ms)
      return fail("range.endDate must be a date on or after startDate.");
    r.end_day = *end_ms / day_ms;
  } else if (range_type == "numbered") {
    if (range["numberOfOccurrences"].get_int64().get(r.occurrences)
        || r.occurrences < 1)
      return fail("range.numberOfOccurrences must be at least 1.");
  } else if (range_type != "noEnd") {
    return fail("range.type must be endDate, noEnd or numbered.");
  }
  if (!range["recurrenceTimeZone"].get_string().get(text))
    r.time_zone = std::string{text};
  r.json = recurrence_json(r);
  r.active = true;
  out = std::move(r);
  return true;
}

/// The occurrences of a series master overlapping [from, to): copies of the
/// master with their own id, times, iCalUId and originalStart. Bounded, so
/// that an endless series over a wide window cannot run away.
std::vector<event> expand_series(const event& master, int64_t from,
                                 int64_t to) {
  constexpr size_t max_occurrences = 2000;
  std::vector<event> out;
  const auto& rule = master.recurrence;
  int64_t local_start = master.start_ms;
  utc_to_local(master.start_time_zone, master.start_ms, local_start);
  int64_t time_of_day = ((local_start % day_ms) + day_ms) % day_ms;
  int64_t duration = master.end_ms - master.start_ms;
  int64_t count = 0;
  bool done = false;
  for (int64_t period = 0;
       !done && period < 200000 && out.size() < max_occurrences; ++period) {
    for (int64_t day : period_days(rule, period)) {
      if (day < rule.start_day)
        continue;
      if ((rule.end_day >= 0 && day > rule.end_day)
          || (rule.occurrences > 0 && count >= rule.occurrences)) {
        done = true;
        break;
      }
      ++count;
      int64_t start = day * day_ms + time_of_day;
      local_to_utc(master.start_time_zone, start, start);
      if (start >= to) {
        done = true;
        break;
      }
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
