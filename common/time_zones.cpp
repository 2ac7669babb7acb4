#include "common/time_zones.hpp"

#include <chrono>
#include <date/tz.h>
#include <exception>
#include <map>

namespace crmsync {

namespace {

// Windows zone names -> the IANA zone of their territory "001", as listed
// by the Unicode CLDR's windowsZones table.
const std::map<std::string_view, std::string_view>& windows_zones() {
  static const std::map<std::string_view, std::string_view> table{
      {"Dateline Standard Time", "Etc/GMT+12"},
      {"Hawaiian Standard Time", "Pacific/Honolulu"},
      {"Alaskan Standard Time", "America/Anchorage"},
      {"Pacific Standard Time", "America/Los_Angeles"},
      {"US Mountain Standard Time", "America/Phoenix"},
      {"Mountain Standard Time", "America/Denver"},
      {"Central America Standard Time", "America/Guatemala"},
      {"Central Standard Time", "America/Chicago"},
      {"Central Standard Time (Mexico)", "America/Mexico_City"},
      {"Canada Central Standard Time", "America/Regina"},
      {"SA Pacific Standard Time", "America/Bogota"},
      {"Eastern Standard Time", "America/New_York"},
      {"US Eastern Standard Time", "America/Indianapolis"},
      {"Atlantic Standard Time", "America/Halifax"},
      {"Newfoundland Standard Time", "America/St_Johns"},
      {"E. South America Standard Time", "America/Sao_Paulo"},
      {"Argentina Standard Time", "America/Buenos_Aires"},
      {"UTC", "Etc/UTC"},
      {"GMT Standard Time", "Europe/London"},
      {"Greenwich Standard Time", "Atlantic/Reykjavik"},
      {"W. Europe Standard Time", "Europe/Berlin"},
      {"Central Europe Standard Time", "Europe/Budapest"},
      {"Romance Standard Time", "Europe/Paris"},
      {"Central European Standard Time", "Europe/Warsaw"},
      {"W. Central Africa Standard Time", "Africa/Lagos"},
      {"GTB Standard Time", "Europe/Bucharest"},
      {"FLE Standard Time", "Europe/Kiev"},
      {"South Africa Standard Time", "Africa/Johannesburg"},
      {"Israel Standard Time", "Asia/Jerusalem"},
      {"Egypt Standard Time", "Africa/Cairo"},
      {"Turkey Standard Time", "Europe/Istanbul"},
      {"Russian Standard Time", "Europe/Moscow"},
      {"Arab Standard Time", "Asia/Riyadh"},
      {"Arabian Standard Time", "Asia/Dubai"},
      {"Pakistan Standard Time", "Asia/Karachi"},
      {"India Standard Time", "Asia/Calcutta"},
      {"Nepal Standard Time", "Asia/Katmandu"},
      {"Bangladesh Standard Time", "Asia/Dhaka"},
      {"SE Asia Standard Time", "Asia/Bangkok"},
      {"China Standard Time", "Asia/Shanghai"},
      {"Singapore Standard Time", "Asia/Singapore"},
      {"Taipei Standard Time", "Asia/Taipei"},
      {"Tokyo Standard Time", "Asia/Tokyo"},
      {"Korea Standard Time", "Asia/Seoul"},
      {"AUS Central Standard Time", "Australia/Darwin"},
      {"E. Australia Standard Time", "Australia/Brisbane"},
      {"AUS Eastern Standard Time", "Australia/Sydney"},
      {"New Zealand Standard Time", "Pacific/Auckland"},
  };
  return table;
}

const date::time_zone* resolve(std::string_view zone) {
  if (zone == "UTC" || zone == "Etc/UTC" || zone == "Coordinated Universal Time"
      || zone == "tzone://Microsoft/Utc")
    zone = "Etc/UTC";
  auto& table = windows_zones();
  auto i = table.find(zone);
  std::string_view iana = i != table.end() ? i->second : zone;
  try {
    return date::locate_zone(iana);
  } catch (const std::exception&) {
    return nullptr; // not a zone the database knows
  }
}

} // namespace

bool known_time_zone(std::string_view zone) {
  return resolve(zone) != nullptr;
}

bool local_to_utc(std::string_view zone, int64_t local_ms, int64_t& utc_ms) {
  auto tz = resolve(zone);
  if (tz == nullptr)
    return false;
  using namespace std::chrono;
  date::local_time<milliseconds> local{milliseconds{local_ms}};
  auto info = tz->get_info(date::floor<seconds>(local));
  // Unique: the one offset. Ambiguous: the earlier (first) offset.
  // Nonexistent: the offset before the gap, which moves the time forward
  // by the gap's length, as Exchange does.
  auto offset = info.first.offset;
  utc_ms = local_ms - duration_cast<milliseconds>(offset).count();
  return true;
}

bool utc_to_local(std::string_view zone, int64_t utc_ms, int64_t& local_ms) {
  auto tz = resolve(zone);
  if (tz == nullptr)
    return false;
  using namespace std::chrono;
  date::sys_time<milliseconds> t{milliseconds{utc_ms}};
  auto info = tz->get_info(t);
  local_ms = utc_ms + duration_cast<milliseconds>(info.offset).count();
  return true;
}

} // namespace crmsync
