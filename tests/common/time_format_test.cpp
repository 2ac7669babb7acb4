#include "common/time_format.hpp"

#include <catch2/catch.hpp>

using namespace crmsync;

TEST_CASE("RFC 3339 times parse to UTC milliseconds", "[common][time]") {
  CHECK(parse_rfc3339_ms("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_rfc3339_ms("2026-11-26T14:00:00Z") == 1795701600000);
  CHECK(parse_rfc3339_ms("2026-11-26t14:00:00z") == 1795701600000);
  CHECK(parse_rfc3339_ms("2026-11-26T14:00:00.5Z") == 1795701600500);
  CHECK(parse_rfc3339_ms("2026-11-26T14:00:00.123456789Z") == 1795701600123);
  CHECK(parse_rfc3339_ms("2026-11-26T15:30:00+01:30") == 1795701600000);
  CHECK(parse_rfc3339_ms("2026-11-26T09:00:00-05:00") == 1795701600000);
  CHECK(parse_rfc3339_ms("1969-12-31T23:59:59Z") == -1000);
  CHECK(parse_rfc3339_ms("2024-02-29T00:00:00Z"));
}

TEST_CASE("malformed or impossible times are refused", "[common][time]") {
  for (const char* bad :
       {"", "2026-11-26", "2026-11-26T14:00:00", "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z", "2026-11-26T24:00:00Z",
        "2026-11-26T14:60:00Z", "2026-11-26T14:00:60Z", "2026-11-26 14:00:00Z",
        "2026-11-26T14:00:00.Z", "2026-11-26T14:00:00+0100",
        "2026-11-26T14:00:00+01:00x", "2026-11-26T14:00:00ZZ",
        "20261126T140000Z", "2026-11-2aT14:00:00Z", "+2026-11-26T14:00:00Z"})
    CHECK_FALSE(parse_rfc3339_ms(bad));
}

TEST_CASE("dates and formatting round-trip", "[common][time]") {
  CHECK(parse_date_ms("2026-11-26") == 1795651200000);
  CHECK_FALSE(parse_date_ms("2026-11-26T00:00:00Z"));
  CHECK_FALSE(parse_date_ms("2026-02-29"));
  CHECK(format_date(1795651200000) == "2026-11-26");
  CHECK(format_date(-1) == "1969-12-31");
  CHECK(format_rfc3339(1795701600000) == "2026-11-26T14:00:00Z");
  CHECK(format_rfc3339(1795701600500) == "2026-11-26T14:00:00.500Z");
  CHECK(format_rfc3339(-1000) == "1969-12-31T23:59:59Z");
  CHECK(format_rfc3339_ms(0) == "1970-01-01T00:00:00.000Z");
  for (int64_t ms :
       {int64_t{0}, int64_t{951782400000}, int64_t{-62135596800000},
        int64_t{253402300799000}, int64_t{1795701600123}})
    CHECK(parse_rfc3339_ms(format_rfc3339(ms)) == ms);
}
