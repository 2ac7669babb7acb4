// Time zones as Outlook names them: Windows zone names ("Pacific Standard
// Time"), plus IANA names and UTC, converted with the system's tz database.
//
// Used by the emulator for dateTimeTimeZone values and the
// `Prefer: outlook.timezone` header, and by the sync engine for the zone a
// CRM event was written in (sync/graph_event.cpp). Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace crmsync {

/// Whether the zone name is known (Windows, IANA or a UTC alias).
bool known_time_zone(std::string_view zone);

/// Wall-clock milliseconds in `zone` -> UTC milliseconds. A wall time that
/// does not exist (spring-forward gap) or exists twice (fall-back) resolves
/// to the earlier instant. False for an unknown zone.
bool local_to_utc(std::string_view zone, int64_t local_ms, int64_t& utc_ms);

/// UTC milliseconds -> wall-clock milliseconds in `zone`.
bool utc_to_local(std::string_view zone, int64_t utc_ms, int64_t& local_ms);

} // namespace crmsync
