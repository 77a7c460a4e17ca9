"""Container cgroups: limits written, usage and OOM kills read, for v1 and v2 layouts.

The file logic runs against directory trees shaped like cgroupfs (a plain directory
accepts the same writes); detection and removal are also checked on this machine's real
hierarchy when it is writable.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from control.kubelet.runtime.cgroups import CgroupManager, ContainerCgroup, read_oom_kills


def fake_v2(root: Path) -> Path:
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("\n")
    return root


def test_v2_layout_limits_and_usage(tmp_path: Path) -> None:
    root = fake_v2(tmp_path / "cg")
    # Plain directories do not grow the control files the kernel provides: pre-create them.
    base = root / "kubelab.slice" / "kubelab-n1.slice"
    base.mkdir(parents=True)
    for directory in (root / "kubelab.slice", base):
        (directory / "cgroup.subtree_control").write_text("")
    pod_dir = base / "podU"
    pod_dir.mkdir()
    (pod_dir / "cgroup.subtree_control").write_text("")
    manager = CgroupManager.detect(node_name="n1", root=root)
    assert manager is not None and manager.version == 2
    assert (root / "cgroup.subtree_control").read_text() == "+cpu +memory"
    cgroup = manager.create(
        pod_uid="U",
        container_id="c1",
        memory_limit_bytes=64 << 20,
        cpu_limit_millis=250,
        cpu_request_millis=100,
    )
    leaf = pod_dir / "c1"
    assert cgroup.procs_files == (leaf / "cgroup.procs",)
    assert (leaf / "memory.max").read_text() == str(64 << 20)
    assert (leaf / "cpu.max").read_text() == "25000 100000"
    assert (leaf / "memory.oom.group").read_text() == "1"
    assert (leaf / "cpu.weight").read_text() == "4"
    (leaf / "memory.current").write_text("5000\n")
    (leaf / "memory.stat").write_text("anon 3000\ninactive_file 1000\nactive_file 500\n")
    (leaf / "cpu.stat").write_text("usage_usec 1234\nuser_usec 1000\n")
    (leaf / "cgroup.procs").write_text("")
    usage = manager.usage(cgroup)
    assert usage is not None
    assert (
        usage.cpu_nanoseconds,
        usage.memory_usage_bytes,
        usage.memory_working_set_bytes,
        usage.memory_rss_bytes,
    ) == (
        1_234_000,
        5000,
        4000,
        3000,
    )
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
    assert read_oom_kills(cgroup.oom_file) == 1
    assert ContainerCgroup.from_record(cgroup.to_record()) == cgroup


def test_v1_layout_under_the_agents_own_cgroup(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    mounts = {name: tmp_path / "cg" / name for name in ("memory", "cpu,cpuacct")}
    lines = []
    for index, (options, mount) in enumerate(mounts.items()):
        mount.mkdir(parents=True)
        lines.append(f"{30 + index} 25 0:{40 + index} / {mount} rw,relatime - cgroup cgroup rw,{options}")
    (proc / "self" / "mountinfo").write_text("\n".join(lines) + "\n")
    (proc / "self" / "cgroup").write_text("5:memory:/agent\n3:cpu,cpuacct:/\n")
    manager = CgroupManager.detect(node_name="n1", root=tmp_path / "no-unified", proc=proc)
    assert manager is not None and manager.version == 1
    cgroup = manager.create(pod_uid="U", container_id="c1", memory_limit_bytes=1 << 20, cpu_limit_millis=1500)
    assert cgroup.memory_dir == mounts["memory"] / "agent" / "kubelab" / "n1" / "podU" / "c1"
    assert cgroup.cpu_dir == cgroup.cpuacct_dir == mounts["cpu,cpuacct"] / "kubelab" / "n1" / "podU" / "c1"
    assert (cgroup.memory_dir / "memory.limit_in_bytes").read_text() == str(1 << 20)
    assert (cgroup.cpu_dir / "cpu.cfs_quota_us").read_text() == "150000"
    assert len(cgroup.procs_files) == 2
    (cgroup.memory_dir / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert read_oom_kills(cgroup.oom_file) == 2
    assert read_oom_kills(tmp_path / "missing") == 0


def test_no_usable_hierarchy_means_no_manager(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text("22 27 0:21 / /proc rw - proc proc rw\n")
    (proc / "self" / "cgroup").write_text("0::/\n")
    assert CgroupManager.detect(node_name="n1", root=tmp_path / "none", proc=proc) is None
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("pids\n")
    assert CgroupManager.detect(node_name="n1", root=v2) is None, "memory and cpu controllers are required"


def test_real_hierarchy_when_writable() -> None:
    manager = CgroupManager.detect(node_name=f"test-{os.getpid()}")
    if manager is None:
        pytest.skip("no writable cgroup hierarchy on this machine")
    cgroup = manager.create(
        pod_uid="pod-x", container_id="c", memory_limit_bytes=32 << 20, cpu_limit_millis=100
    )
    try:
        assert manager.pids(cgroup) == []
        usage = manager.usage(cgroup)
        assert usage is not None and usage.processes == 0
        assert read_oom_kills(cgroup.oom_file) == 0
    finally:
        manager.remove(cgroup)
    assert not any(directory.exists() for directory in cgroup.directories)
    assert not any(directory.parent.exists() for directory in cgroup.directories), (
        "the empty pod cgroup goes too"
    )
    for node_dir in {directory.parent.parent for directory in cgroup.directories}:
        node_dir.rmdir()  # this test's node subtree, now empty
