"""The pod securityContext: merged as the kubelet merges it, resolved as containerd resolves it,
and applied to real container processes (users, groups, capabilities, no_new_privs, a read-only
root, fsGroup on volumes, runAsNonRoot refusals) — for the container and for `exec` into it."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path
from typing import Any

import pytest

from control.kubelet.agent import NodeAgentOptions
from control.kubelet.objectcache import SECRETS
from control.kubelet.runtime import security
from control.kubelet.runtime.process import RuntimeOptions
from control.kubelet.runtime.protocol import ImageInfo, SecurityConfig
from control.kubelet.runtime.security import (
    Credentials,
    SecurityContextError,
    VolumeOwnership,
    container_security,
    effective_capabilities,
    resolve_credentials,
    setpriv_argv,
    unapplied,
    verify_run_as_non_root,
)
from tests.control.kubelet.conftest import FAST, Cluster, RunningAgent, container_status, pod, shell, state_of

Obj = dict[str, Any]
ALL = range(len(security.CAPABILITIES))
DEFAULT_MASK = 0xA80425FB  # runc's (docker's) default capability set, as /proc shows it
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing users and capabilities needs root")


def spec_pod(*containers: Obj, **pod_context: Any) -> Obj:
    return {
        "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
        "spec": {"securityContext": pod_context, "containers": list(containers)},
    }


def mask(capabilities: tuple[int, ...] | None) -> int:
    return sum(1 << number for number in capabilities or ())


# ---------------------------------------------------------------------------- the kubelet's half


def test_container_fields_override_the_pod_and_fs_group_joins_the_groups() -> None:
    container = {"name": "app", "securityContext": {"runAsUser": 2000, "allowPrivilegeEscalation": False}}
    body = spec_pod(container, runAsUser=1000, runAsGroup=3000, supplementalGroups=[4000, 4001], fsGroup=2000)
    config = container_security(body, container)
    assert config == SecurityConfig(
        run_as_user=2000,
        run_as_group=3000,
        supplemental_groups=(4000, 4001, 2000),
        supplemental_groups_policy="Merge",
        no_new_privs=True,
    )
    assert container_security(spec_pod(), {"name": "bare"}) == SecurityConfig()
    strict = container_security(spec_pod(supplementalGroupsPolicy="Strict"), {"name": "x"})
    assert strict.supplemental_groups_policy == "Strict"
    detailed = {
        "name": "x",
        "securityContext": {
            "privileged": True,
            "readOnlyRootFilesystem": True,
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
            "allowPrivilegeEscalation": True,
        },
    }
    config = container_security(spec_pod(detailed), detailed)
    assert config.privileged and config.readonly_rootfs and not config.no_new_privs
    assert config.capabilities_add == ("NET_ADMIN",) and config.capabilities_drop == ("ALL",)


def test_run_as_non_root_refuses_root_with_upstreams_words() -> None:
    root_image = ImageInfo(image="busybox", image_id="x", uid=0)
    app = {"name": "app"}
    with pytest.raises(SecurityContextError) as refused:
        verify_run_as_non_root(spec_pod(app, runAsNonRoot=True), app, image=root_image)
    assert str(refused.value) == (
        'container has runAsNonRoot and image will run as root (pod: "web_shop(u-1)", container: app)'
    )
    explicit_root = {"name": "app", "securityContext": {"runAsUser": 0, "runAsNonRoot": True}}
    with pytest.raises(SecurityContextError, match="container's runAsUser breaks non-root policy"):
        verify_run_as_non_root(spec_pod(explicit_root), explicit_root, image=root_image)
    named = ImageInfo(image="busybox", image_id="x", username="www-data")
    with pytest.raises(SecurityContextError) as refused:
        verify_run_as_non_root(spec_pod(app, runAsNonRoot=True), app, image=named)
    assert "image has non-numeric user (www-data), cannot verify user is non-root" in str(refused.value)

    as_user = {"name": "app", "securityContext": {"runAsUser": 1000}}
    verify_run_as_non_root(spec_pod(as_user, runAsNonRoot=True), as_user, image=root_image)
    verify_run_as_non_root(spec_pod(app), app, image=root_image)  # not asked for: root is fine
    opted_out = {"name": "app", "securityContext": {"runAsNonRoot": False}}
    verify_run_as_non_root(spec_pod(opted_out, runAsNonRoot=True), opted_out, image=root_image)
    verify_run_as_non_root(
        spec_pod(app, runAsNonRoot=True), app, image=ImageInfo(image="b", image_id="x", uid=1000)
    )


def test_unapplied_fields_are_named_and_depend_on_privileges() -> None:
    container = {
        "name": "app",
        "securityContext": {
            "seccompProfile": {"type": "RuntimeDefault"},
            "readOnlyRootFilesystem": True,
            "capabilities": {"add": ["NET_ADMIN"]},
        },
    }
    body = spec_pod(
        container,
        runAsUser=1000,
        fsGroup=2000,
        seLinuxOptions={"level": "s0"},
        sysctls=[{"name": "net.core.somaxconn", "value": "1024"}],
        appArmorProfile={"type": "Unconfined"},
    )
    as_root = unapplied(body, root=True, mount_namespaces=True)
    assert as_root == [
        "securityContext.sysctls are not applied (containers share the host's kernel namespaces)",
        "securityContext.seLinuxOptions are not applied (no SELinux labels)",
        "securityContext.seccompProfile RuntimeDefault is not applied (no seccomp filter is installed)",
    ]
    unprivileged = unapplied(body, root=False, mount_namespaces=False)
    assert len(unprivileged) == len(set(unprivileged))
    text = "; ".join(unprivileged)
    for field in ("runAsUser", "fsGroup", "readOnlyRootFilesystem", "capabilities"):
        assert f"securityContext.{field} " in text
    assert unapplied(spec_pod({"name": "x"}), root=False, mount_namespaces=False) == []


def test_fs_user_is_the_single_user_of_every_container_but_ephemeral_ones() -> None:
    same = spec_pod({"name": "a"}, {"name": "b"}, runAsUser=1234)
    assert security.fs_user(same) == 1234
    same["spec"]["ephemeralContainers"] = [{"name": "debug", "securityContext": {"runAsUser": 0}}]
    assert security.fs_user(same) == 1234, "ephemeral containers do not count"
    assert security.fs_user(spec_pod({"name": "a"}, runAsUser=0)) is None, "root needs no ownership"
    assert (
        security.fs_user(spec_pod({"name": "a"}, {"name": "b", "securityContext": {"runAsUser": 7}})) is None
    )
    assert security.fs_user(spec_pod({"name": "a"})) is None


def test_volume_ownership_applies_fs_group_like_set_volume_ownership(tmp_path: Path) -> None:
    empty = tmp_path / "scratch"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "file").write_text("x")
    os.chmod(empty / "sub" / "file", 0o600)
    config = tmp_path / "config"
    generation = config / "..2026_01"
    generation.mkdir(parents=True)
    (generation / "key").write_text("v")
    os.chmod(generation / "key", 0o644)
    (config / "..data").symlink_to("..2026_01")
    (config / "key").symlink_to("..data/key")
    body = spec_pod({"name": "app"}, fsGroup=2345)
    body["spec"]["volumes"] = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "config", "configMap": {"name": "c"}},
        {"name": "host", "hostPath": {"path": str(tmp_path / "host")}},
    ]
    (tmp_path / "host").mkdir()
    ownership = VolumeOwnership(body)
    if os.geteuid() != 0:
        ownership.apply({"scratch": empty})
        assert os.stat(empty).st_gid != 2345, "without root, ownership is left alone (and reported)"
        return
    ownership.apply({"scratch": empty, "config": config, "host": tmp_path / "host"})
    for path in (empty, empty / "sub", empty / "sub" / "file", generation, generation / "key"):
        assert os.stat(path, follow_symlinks=False).st_gid == 2345, path
    assert stat.S_IMODE(os.stat(empty).st_mode) & 0o7070 == 0o2070  # rw + x for the group, setgid
    assert stat.S_IMODE(os.stat(empty / "sub" / "file").st_mode) == 0o660  # read-write volume: 0660 mask
    assert stat.S_IMODE(os.stat(generation / "key").st_mode) == 0o644  # read-only volume: 0440 mask
    assert os.lstat(config / "key").st_gid == 2345, "symlinks are chowned, not chmodded"
    assert os.stat(tmp_path / "host").st_gid != 2345, "hostPath volumes keep their ownership"

    # A rewrite (a new ..data generation) is owned again; an unchanged volume is not walked again.
    fresh = config / "..2026_02"
    fresh.mkdir()
    (fresh / "key").write_text("v2")
    (config / "..data").unlink()
    (config / "..data").symlink_to("..2026_02")
    os.chown(empty / "sub" / "file", -1, 0)
    ownership.apply({"scratch": empty, "config": config})
    assert os.stat(fresh / "key").st_gid == 2345
    assert os.stat(empty / "sub" / "file").st_gid == 0


@needs_root
def test_on_root_mismatch_skips_a_volume_whose_root_already_fits(tmp_path: Path) -> None:
    volume = tmp_path / "data"
    volume.mkdir()
    (volume / "inner").write_text("x")
    os.chown(volume, -1, 2345)
    os.chmod(volume, 0o2775)
    body = spec_pod({"name": "app"}, fsGroup=2345, fsGroupChangePolicy="OnRootMismatch")
    body["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    VolumeOwnership(body).apply({"data": volume})
    assert os.stat(volume / "inner").st_gid == 0, "the root already matched: nothing below it changed"
    os.chmod(volume, 0o775)  # setgid missing: the root no longer fits
    VolumeOwnership(body).apply({"data": volume})
    assert os.stat(volume / "inner").st_gid == 2345


@needs_root
def test_owner_only_secret_files_go_to_the_pods_single_user(tmp_path: Path) -> None:
    volume = tmp_path / "secret"
    volume.mkdir()
    (volume / "token").write_text("t")
    os.chmod(volume / "token", 0o600)
    same_user = spec_pod({"name": "a"}, {"name": "b"}, runAsUser=1234)
    same_user["spec"]["volumes"] = [{"name": "secret", "secret": {"secretName": "s"}}]
    VolumeOwnership(same_user).apply({"secret": volume})
    assert os.stat(volume / "token").st_uid == 1234
    mixed = spec_pod({"name": "a"}, {"name": "b", "securityContext": {"runAsUser": 99}}, runAsUser=1234)
    mixed["spec"]["volumes"] = same_user["spec"]["volumes"]
    assert security.fs_user(mixed) is None and not VolumeOwnership(mixed).needed


# ---------------------------------------------------------------------------- the runtime's half


def test_capabilities_follow_containerds_add_and_drop_rules() -> None:
    def caps(**fields: Any) -> set[str] | None:
        found = effective_capabilities(SecurityConfig(**fields), available=ALL)
        return None if found is None else {security.CAPABILITIES[number] for number in found}

    assert caps() == set(security.DEFAULT_CAPABILITIES)
    assert caps(capabilities_drop=("ALL",)) == set()
    assert caps(capabilities_drop=("ALL",), capabilities_add=("NET_BIND_SERVICE",)) == {"NET_BIND_SERVICE"}
    assert caps(capabilities_add=("NET_ADMIN", "CAP_SYS_TIME"), capabilities_drop=("chown", "NO_SUCH")) == (
        set(security.DEFAULT_CAPABILITIES) - {"CHOWN"} | {"NET_ADMIN", "SYS_TIME"}
    )
    assert caps(capabilities_add=("ALL",), capabilities_drop=("SYS_ADMIN",)) == set(security.CAPABILITIES) - {
        "SYS_ADMIN"
    }
    assert caps(privileged=True) is None
    limited = effective_capabilities(SecurityConfig(capabilities_add=("ALL",)), available=(0, 21))
    assert limited == (0, 21), "never more than the node agent's bounding set"


def test_credentials_resolve_against_the_user_and_group_databases(monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        unprivileged = resolve_credentials(SecurityConfig(run_as_user=1000, no_new_privs=True))
        assert unprivileged.uid == os.geteuid() and not unprivileged.change_identity
        assert unprivileged.no_new_privs and unprivileged.capabilities is None
        return
    users = {1000: pwd.struct_passwd(("app", "x", 1000, 1500, "", "/home/app", "/bin/sh"))}

    def getpwuid(uid: int) -> pwd.struct_passwd:
        return users[uid]

    groups = [
        grp.struct_group(("ops", "x", 1700, ["app", "other"])),
        grp.struct_group(("dev", "x", 1800, [])),
    ]
    monkeypatch.setattr(security.pwd, "getpwuid", getpwuid)
    monkeypatch.setattr(security.grp, "getgrall", lambda: groups)

    merged = resolve_credentials(SecurityConfig(run_as_user=1000, supplemental_groups=(4000,)))
    assert (merged.uid, merged.gid, merged.groups) == (1000, 1500, (1500, 1700, 4000))
    strict = resolve_credentials(
        SecurityConfig(run_as_user=1000, run_as_group=3000, supplemental_groups_policy="Strict")
    )
    assert (strict.gid, strict.groups) == (3000, (3000,))
    unknown = resolve_credentials(SecurityConfig(run_as_user=4242))
    assert (unknown.uid, unknown.gid, unknown.groups) == (4242, 0, (0,)), "a user not in passwd gets gid 0"
    assert resolve_credentials(None).capabilities == effective_capabilities(
        SecurityConfig(), available=security.bounding_set()
    )
    assert Credentials.from_record(merged.to_record()) == merged


def test_setpriv_prefix_carries_the_same_identity() -> None:
    user = Credentials(uid=1000, gid=3000, groups=(3000, 4000), capabilities=(0, 10), no_new_privs=True,
                       change_identity=True)  # fmt: skip
    assert setpriv_argv(user, setpriv="/usr/bin/setpriv") == [
        "/usr/bin/setpriv",
        "--reuid=1000",
        "--regid=3000",
        "--groups=3000,4000",
        "--bounding-set=-all,+chown,+net_bind_service",
        "--no-new-privs",
        "--",
    ]
    root = Credentials(uid=0, gid=0, groups=(), capabilities=(), no_new_privs=False, change_identity=True)
    assert setpriv_argv(root, setpriv="setpriv") == [
        "setpriv",
        "--reuid=0",
        "--regid=0",
        "--clear-groups",
        "--bounding-set=-all",
        "--inh-caps=-all",
        "--",
    ]
    keep = Credentials(uid=5, gid=5, groups=(5,), capabilities=None, no_new_privs=True, change_identity=False)
    assert setpriv_argv(keep, setpriv="setpriv") == ["setpriv", "--no-new-privs", "--"]


# ---------------------------------------------------------------------------- real containers


def proc_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def container_id(pod_obj: Obj, name: str) -> str:
    return container_status(pod_obj, name)["containerID"].removeprefix("kubelab://")


async def exec_in(agent: RunningAgent, pod_obj: Obj, name: str, script: str) -> tuple[int, str, str]:
    result = await agent.agent.runtime.exec_sync(
        container_id(pod_obj, name), ["sh", "-c", script], timeout=10
    )
    return result.exit_code, result.stdout.decode(), result.stderr.decode()


async def main_pid(agent: RunningAgent, pod_obj: Obj, name: str) -> int:
    status = await agent.agent.runtime.status(container_id(pod_obj, name))
    assert status.pid is not None
    return status.pid


@needs_root
async def test_users_groups_capabilities_and_no_new_privs_reach_the_processes(cluster: Cluster) -> None:
    agent = await cluster.start_agent()
    scratch = [{"name": "scratch", "mountPath": "/scratch"}]
    user = shell(
        "user",
        "echo hello > /scratch/made-by-user; sleep 60",
        volumeMounts=scratch,
        securityContext={"allowPrivilegeEscalation": False, "capabilities": {"add": ["NET_ADMIN"]}},
    )
    root = shell("root", "sleep 60", securityContext={"runAsUser": 0})
    dropped = shell(
        "dropped",
        "sleep 60",
        securityContext={"runAsUser": 0, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
    )
    privileged = shell("privileged", "sleep 60", securityContext={"runAsUser": 0, "privileged": True})
    body = pod(
        "identities",
        user,
        root,
        dropped,
        privileged,
        volumes=[{"name": "scratch", "emptyDir": {}}],
        securityContext={
            "runAsUser": 1000,
            "runAsGroup": 3000,
            "supplementalGroups": [4000],
            "fsGroup": 2000,
        },
    )
    await cluster.create_pod(body)
    running = await cluster.wait_pod(
        "identities",
        lambda p: all("running" in state_of(p, c) for c in ("user", "root", "dropped", "privileged")),
    )

    status = proc_status(await main_pid(agent, running, "user"))
    assert status["Uid"].split() == ["1000"] * 4 and status["Gid"].split() == ["3000"] * 4
    assert sorted(map(int, status["Groups"].split())) == [2000, 3000, 4000]
    assert status["NoNewPrivs"] == "1"
    assert int(status["CapEff"], 16) == 0, "a non-root process holds no effective capabilities, as under runc"
    assert int(status["CapBnd"], 16) == DEFAULT_MASK | 1 << 12, "NET_ADMIN joins the bounding set"
    code, out, err = await exec_in(
        agent,
        running,
        "user",
        "id -u; id -G; grep -E '^(NoNewPrivs|CapEff)' /proc/self/status; stat -c %g /scratch",
    )
    assert code == 0, err
    lines = out.split("\n")
    assert lines[0] == "1000" and sorted(map(int, lines[1].split())) == [2000, 3000, 4000]
    assert int(lines[2].split()[1], 16) == 0 and lines[3].split() == ["NoNewPrivs:", "1"]
    assert lines[4] == "2000", "the emptyDir is group-owned by fsGroup"
    made = next(
        (agent.data_dir / "pods").glob("*identities*/volumes/kubernetes.io~empty-dir/scratch/made-by-user")
    )
    assert (made.stat().st_uid, made.stat().st_gid) == (1000, 2000), "setgid directory: new files get fsGroup"
    code, _, err = await exec_in(agent, running, "user", "cat /etc/shadow")
    assert code != 0 and "Permission denied" in err

    assert int(proc_status(await main_pid(agent, running, "root"))["CapEff"], 16) == DEFAULT_MASK
    code, out, _ = await exec_in(agent, running, "root", "id -u; grep ^CapEff /proc/self/status")
    assert out.split("\n")[0] == "0" and int(out.split()[2], 16) == DEFAULT_MASK
    assert int(proc_status(await main_pid(agent, running, "dropped"))["CapEff"], 16) == 1 << 10
    code, out, _ = await exec_in(agent, running, "dropped", "grep ^CapEff /proc/self/status")
    assert int(out.split()[1], 16) == 1 << 10, "exec gets the same capabilities"
    bounding = sum(1 << number for number in security.bounding_set())
    assert int(proc_status(await main_pid(agent, running, "privileged"))["CapEff"], 16) == bounding


@needs_root
async def test_read_only_root_keeps_volumes_writable(cluster: Cluster) -> None:
    agent = await cluster.start_agent()
    app = shell(
        "app",
        "sleep 60",
        volumeMounts=[
            {"name": "data", "mountPath": "/data"},
            {"name": "cache", "mountPath": "/var/cache/app"},
        ],
        securityContext={"readOnlyRootFilesystem": True},
    )
    volumes = [{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}]
    await cluster.create_pod(pod("read-only", app, volumes=volumes))
    running = await cluster.wait_pod("read-only", lambda p: "running" in state_of(p, "app"))
    for target in ("/x", "/tmp/x", "/etc/x", "/usr/x", "/etc/resolv.conf"):
        code, _, err = await exec_in(agent, running, "app", f"echo > {target}")
        assert code != 0 and "Read-only file system" in err, (target, err)
    code, out, err = await exec_in(
        agent,
        running,
        "app",
        "echo a > /data/a && echo b > /var/cache/app/b && echo c > /dev/null && echo d > /etc/hosts"
        " && cat /data/a",
    )
    assert (code, out) == (0, "a\n"), err


@needs_root
async def test_run_as_non_root_keeps_the_container_waiting(cluster: Cluster) -> None:
    await cluster.start_agent()
    refused = shell("app", "sleep 60", securityContext={"runAsNonRoot": True})
    allowed = shell("ok", "sleep 60", securityContext={"runAsNonRoot": True, "runAsUser": 1000})
    await cluster.create_pod(pod("non-root", refused, allowed))
    waiting = await cluster.wait_pod(
        "non-root",
        lambda p: (
            (state_of(p, "app").get("waiting") or {}).get("reason") == "CreateContainerConfigError"
            and "running" in state_of(p, "ok")
        ),
    )
    message = state_of(waiting, "app")["waiting"]["message"]
    uid = waiting["metadata"]["uid"]
    assert message == (
        "container has runAsNonRoot and image will run as root "
        f'(pod: "non-root_default({uid})", container: app)'
    )
    await cluster.wait_event(
        "non-root", "Failed", contains="container has runAsNonRoot and image will run as root"
    )


@needs_root
async def test_secret_volume_is_readable_by_the_pods_user_and_limits_are_reported(cluster: Cluster) -> None:
    agent = await cluster.start_agent()
    await cluster.client.create(
        SECRETS, {"metadata": {"name": "creds"}, "stringData": {"password": "hunter2"}}, namespace="default"
    )
    app = shell(
        "app",
        "sleep 60",
        volumeMounts=[{"name": "creds", "mountPath": "/creds"}],
        securityContext={"seccompProfile": {"type": "RuntimeDefault"}},
    )
    body = pod(
        "secretive",
        app,
        volumes=[{"name": "creds", "secret": {"secretName": "creds"}}],
        securityContext={"runAsUser": 1000},
    )
    await cluster.create_pod(body)
    running = await cluster.wait_pod("secretive", lambda p: "running" in state_of(p, "app"))
    code, out, err = await exec_in(agent, running, "app", "cat /creds/password")
    assert (code, out) == (0, "hunter2"), err
    event = await cluster.wait_event("secretive", "ProcessRuntimeLimits", contains="seccompProfile")
    assert "RuntimeDefault is not applied" in event["message"]


async def test_without_mount_namespaces_a_read_only_root_is_reported(cluster: Cluster) -> None:
    options = NodeAgentOptions(kubelet=FAST, runtime=RuntimeOptions(namespaces=False, cgroups=False))
    agent = await cluster.start_agent(options=options)
    app = shell(
        "app", "sleep 60", securityContext={"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
    )
    await cluster.create_pod(pod("plain", app))
    running = await cluster.wait_pod("plain", lambda p: "running" in state_of(p, "app"))
    event = await cluster.wait_event("plain", "ProcessRuntimeLimits", contains="readOnlyRootFilesystem")
    assert "no mount namespaces" in event["message"]
    assert proc_status(await main_pid(agent, running, "app"))["NoNewPrivs"] == "1", (
        "no_new_privs still applies"
    )
