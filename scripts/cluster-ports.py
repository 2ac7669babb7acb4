#!/usr/bin/env python3
"""Port bases for deploy/run-cluster.sh whose every port is free right
now, printed as "HTTP CLUSTER ETCD": node N's HTTP on HTTP+N (the front on
HTTP itself, graph-emulator on HTTP+9), its cluster port on CLUSTER+N,
etcd's client ports on ETCD+1..3 and its peer ports on ETCD+101..103.
For the tests and benchmarks that start the script next to others
(tests/deploy/, bench/run-failover.sh, bench/run-shard-move.sh).

The bases are drawn below the kernel's ephemeral range: a port free when
checked but inside that range can be handed to another process's
outgoing connection (or a listener on port 0) before the cluster binds
it (seen: etcd's peer port "address already in use" while other tests
ran)."""
import random
import socket


def ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


top = max(ephemeral_low() - 200, 12000)
while True:
    http, cluster, etcd = (random.randrange(10000, top, 200) for _ in range(3))
    ports = [http + i for i in range(10)] + [cluster + i for i in (1, 2, 3)] \
        + [etcd + i for i in (1, 2, 3, 101, 102, 103)]
    if len(set(ports)) == len(ports) and all(map(free, ports)):
        print(http, cluster, etcd)
        break
