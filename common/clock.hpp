// Wall-clock access in one place, so tests and records agree on units.
//
// All persisted times are milliseconds since the Unix epoch (UTC).
#pragma once

#include <cstdint>

namespace crmsync {

/// Milliseconds since the Unix epoch, from the system clock.
int64_t system_now_ms();

} // namespace crmsync
