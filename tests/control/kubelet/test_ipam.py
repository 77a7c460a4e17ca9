"""Pod IP allocation from the node's pod CIDR, kept on disk."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from control.kubelet.ipam import HostLocalIPAM, IPAMError
from control.kubelet.pods import fallback_pod_cidr


def test_addresses_are_handed_out_in_turn_and_kept_per_pod(tmp_path: Path) -> None:
    ipam = HostLocalIPAM(directory=tmp_path, cidr="127.244.3.0/24")
    assert ipam.allocate("a") == "127.244.3.2", "network and gateway addresses are skipped"
    assert ipam.allocate("b") == "127.244.3.3"
    assert ipam.allocate("a") == "127.244.3.2", "a pod keeps its address"
    ipam.release("a")
    assert ipam.allocate("c") == "127.244.3.4", "a freed address is not reused at once"
    again = HostLocalIPAM(directory=tmp_path, cidr="127.244.3.0/24")
    assert again.allocations() == {"127.244.3.3": "b", "127.244.3.4": "c"}
    assert again.allocate("d") == "127.244.3.5", "the round-robin position survives a restart"


def test_exhaustion_and_bad_cidrs(tmp_path: Path) -> None:
    small = HostLocalIPAM(directory=tmp_path, cidr="127.244.9.0/29")  # hosts .1-.6, .1 kept back
    given = {small.allocate(f"pod-{index}") for index in range(5)}
    assert given == {f"127.244.9.{last}" for last in range(2, 7)}
    with pytest.raises(IPAMError, match=r"no free address left in 127\.244\.9\.0/29"):
        small.allocate("one-too-many")
    with pytest.raises(IPAMError, match="is not a network"):
        HostLocalIPAM(directory=tmp_path, cidr="127.244.9.1/24")
    with pytest.raises(IPAMError, match="too small"):
        HostLocalIPAM(directory=tmp_path, cidr="127.244.9.0/31")


def test_existing_ranges_are_found_again(tmp_path: Path) -> None:
    HostLocalIPAM(directory=tmp_path, cidr="127.244.1.0/24").allocate("p")
    HostLocalIPAM(directory=tmp_path, cidr="127.244.2.0/24").allocate("q")
    (tmp_path / "not-a-range").mkdir()
    found = {str(ipam.network): ipam.allocations() for ipam in HostLocalIPAM.existing(tmp_path)}
    assert found == {"127.244.1.0/24": {"127.244.1.2": "p"}, "127.244.2.0/24": {"127.244.2.2": "q"}}
    assert HostLocalIPAM.existing(tmp_path / "missing") == []


def test_fallback_cidr_follows_the_node_number() -> None:
    assert fallback_pod_cidr("127.100.0.3") == "127.244.3.0/24"
    assert fallback_pod_cidr("not-an-ip") == "127.244.1.0/24"


def test_the_round_robin_position_is_overwritten_in_place_never_truncated(tmp_path: Path) -> None:
    """A truncate-and-rewrite makes ext4 flush the file on close (auto_da_alloc): the position
    file keeps its size, padded, and an older, shorter one is still read."""
    directory = tmp_path / "127.244.4.0-24"
    directory.mkdir()
    (directory / "last_reserved_ip").write_text("127.244.4.9")  # as an older agent wrote it
    ipam = HostLocalIPAM(directory=tmp_path, cidr="127.244.4.0/24")
    assert ipam.allocate("a") == "127.244.4.10"
    inode = (directory / "last_reserved_ip").stat().st_ino
    assert ipam.allocate("b") == "127.244.4.11"
    position = directory / "last_reserved_ip"
    assert position.stat().st_ino == inode and position.stat().st_size == 39
    assert position.read_text().strip() == "127.244.4.11"
    assert HostLocalIPAM(directory=tmp_path, cidr="127.244.4.0/24").allocate("c") == "127.244.4.12"


def test_concurrent_allocations_from_threads_never_share_an_address(tmp_path: Path) -> None:
    ipam = HostLocalIPAM(directory=tmp_path, cidr="127.244.5.0/24")
    with ThreadPoolExecutor(8) as pool:
        given = list(pool.map(ipam.allocate, [f"pod-{index}" for index in range(100)]))
    assert len(set(given)) == 100
