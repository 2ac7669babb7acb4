#!/usr/bin/env python3
"""Port bases for deploy/run-cluster.sh whose every port is free right
now, printed as "HTTP CLUSTER ETCD": node N's HTTP on HTTP+N (the front on
HTTP itself, graph-emulator on HTTP+9), its cluster port on CLUSTER+N,
etcd's client ports on ETCD+1..3 and its peer ports on ETCD+101..103.
For the tests and benchmarks that start the script next to others
(tests/deploy/, bench/run-failover.sh, bench/run-shard-move.sh)."""
import random
import socket


def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


while True:
    http, cluster, etcd = (random.randrange(20000, 60000, 200) for _ in range(3))
    ports = [http + i for i in range(10)] + [cluster + i for i in (1, 2, 3)] \
        + [etcd + i for i in (1, 2, 3, 101, 102, 103)]
    if len(set(ports)) == len(ports) and all(map(free, ports)):
        print(http, cluster, etcd)
        break
