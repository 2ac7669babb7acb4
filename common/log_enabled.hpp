// Whether the logger writes records of a level (common/log.hpp): a caller
// that builds a costly message, say one per HTTP request, asks first.
// Apart from log.hpp so that adding it rebuilt only its users.
#pragma once

#include "common/log.hpp"

namespace crmsync::log {

bool enabled(level lvl);

} // namespace crmsync::log
