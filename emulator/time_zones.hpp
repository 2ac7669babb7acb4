// The emulator's time zones are the product's (common/time_zones.hpp):
// Graph and crmsync must agree on what a zone name means.
#pragma once

#include "common/time_zones.hpp"

namespace crmsync::emulator {

using crmsync::known_time_zone;
using crmsync::local_to_utc;
using crmsync::utc_to_local;

} // namespace crmsync::emulator
