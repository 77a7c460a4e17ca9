"""ClusterIP and NodePort allocation: ranges, reservations, exhaustion, release."""

import random

import pytest

from control.apiserver.allocators import AllocationError, ClusterIPAllocator, NodePortAllocator


def test_cluster_ips_come_from_the_cidr_and_skip_the_kubernetes_address():
    ips = ClusterIPAllocator("127.96.0.0/29", rng=random.Random(1))
    assert ips.kubernetes_service_ip == "127.96.0.1"
    got = {ips.allocate() for _ in range(5)}
    assert got == {"127.96.0.2", "127.96.0.3", "127.96.0.4", "127.96.0.5", "127.96.0.6"}
    with pytest.raises(AllocationError, match="range is full"):
        ips.allocate()
    ips.reserve("127.96.0.1")  # the kubernetes Service reserves its address explicitly


def test_reserving_a_taken_or_foreign_address_fails_and_release_frees_it():
    ips = ClusterIPAllocator("127.96.0.0/16")
    ips.reserve("127.96.3.3")
    with pytest.raises(AllocationError, match="already allocated"):
        ips.reserve("127.96.3.3")
    with pytest.raises(AllocationError, match="not in the valid range"):
        ips.reserve("127.97.0.1")
    with pytest.raises(AllocationError, match="not a valid IP"):
        ips.reserve("nope")
    ips.release("127.96.3.3")
    ips.reserve("127.96.3.3")


def test_seed_marks_existing_addresses_used():
    ips = ClusterIPAllocator("127.96.0.0/30")  # usable: .1 (kubernetes) and .2
    ips.seed(["127.96.0.2"])
    with pytest.raises(AllocationError):
        ips.allocate()


def test_node_ports():
    ports = NodePortAllocator(30000, 30002, rng=random.Random(3))
    ports.reserve(30001)
    assert {ports.allocate(), ports.allocate()} == {30000, 30002}
    with pytest.raises(AllocationError):
        ports.allocate()
    with pytest.raises(AllocationError) as out_of_range:
        ports.reserve(80)
    assert str(out_of_range.value) == (
        "provided port is not in the valid range. The range of valid ports is 30000-30002"
    )
    with pytest.raises(AllocationError) as taken:
        ports.reserve(30001)
    assert str(taken.value) == "provided port is already allocated"  # upstream's ErrAllocated
    with pytest.raises(ValueError):
        NodePortAllocator(10, 5)
