// Waiting for something another process or thread will make true: the one
// polling helper every test uses, so a wait means the same everywhere.
#pragma once

#include <chrono>
#include <functional>

namespace crmsync::test {

/// Calls `done` every `every` until it returns true or `timeout` has
/// passed; the last call is made at the deadline, so a condition that
/// becomes true just in time still counts. Returns its last answer; a
/// caller asserts on it (CHECK/REQUIRE), never ignores it.
bool eventually(const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::seconds(20),
                std::chrono::milliseconds every
                = std::chrono::milliseconds(20));

} // namespace crmsync::test
