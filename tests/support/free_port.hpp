// A loopback port that is free now, for a process that takes its port
// from its command line and does not report it (etcd, a node's cluster or
// metrics port).
//
// Drawn at random below the kernel's ephemeral range: a port from inside
// it (bind to port 0) can be handed to another process's outgoing
// connection or port-0 listener between this check and the bind of the
// process it is meant for; with tests running side by side that happened
// ("address already in use" on an etcd peer port).
#pragma once

#include <cstdint>

namespace crmsync::test {

uint16_t free_port();

} // namespace crmsync::test
