"""Image references and the documented image map of the process runtime."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from control.kubelet.runtime.images import (
    PROFILES,
    Profile,
    effective_command,
    parse_image,
    resolve_command,
    resolve_image,
)
from control.kubelet.runtime.protocol import ImageInfo, ImageNotSupportedError, InvalidImageError


@pytest.mark.parametrize(
    ("image", "normalized", "last"),
    [
        ("nginx", "docker.io/library/nginx:latest", "nginx"),
        ("nginx:1.27", "docker.io/library/nginx:1.27", "nginx"),
        ("prom/prometheus:v2.53.0", "docker.io/prom/prometheus:v2.53.0", "prometheus"),
        ("quay.io/prometheus/prometheus", "quay.io/prometheus/prometheus:latest", "prometheus"),
        ("localhost:5000/kubelab/kubelab:dev", "localhost:5000/kubelab/kubelab:dev", "kubelab"),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "pause"),
        ("busybox@sha256:" + "a" * 64, "docker.io/library/busybox@sha256:" + "a" * 64, "busybox"),
        ("python:3.12-slim", "docker.io/library/python:3.12-slim", "python"),
    ],
)
def test_references_are_normalized(image: str, normalized: str, last: str) -> None:
    reference = parse_image(image)
    assert str(reference) == normalized
    assert reference.last_component == last


@pytest.mark.parametrize(
    "image", ["", "Nginx", "nginx:", "a//b", "nginx:bad tag", ":latest", "-nginx", "UPPER/Case"]
)
def test_invalid_references_are_invalid_image_names(image: str) -> None:
    with pytest.raises(InvalidImageError, match="couldn't parse image name"):
        parse_image(image)


def test_known_images_map_to_host_programs() -> None:
    kubelab = resolve_image("ghcr.io/acme/kubelab:1.0")
    assert kubelab.profile.name == "kubelab"
    assert kubelab.image_id == f"kubelab-process://kubelab@{sys.executable}"
    info = kubelab.info("ghcr.io/acme/kubelab:1.0")
    assert info.env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert resolve_command(kubelab, ["python", "-m", "x"], search_path="/usr/bin") == [
        sys.executable,
        "-m",
        "x",
    ]
    assert resolve_command(kubelab, ["/usr/local/bin/python3"], search_path="/usr/bin") == [sys.executable]
    shell = resolve_image("busybox:1.36")
    assert shell.info("busybox:1.36").cmd == ("sh",)
    assert resolve_command(shell, ["/nowhere/no-such-program"], search_path="/usr/bin") == [
        "/nowhere/no-such-program"
    ]
    assert resolve_command(shell, ["/opt/elsewhere/sh", "-c", "x"], search_path="/usr/bin:/bin")[0].endswith(
        "/sh"
    )
    assert resolve_image("docker.io/library/debian:12").info("debian:12").cmd == ("bash",)


def test_unknown_images_and_missing_programs_are_refused_with_a_reason() -> None:
    with pytest.raises(ImageNotSupportedError, match=r'image "mysql:8" is not supported .* kubelab, nginx'):
        resolve_image("mysql:8")
    profiles = {
        "tool": Profile(
            name="tool", program="definitely-not-installed-xyz", install_hint="apt-get install xyz"
        )
    }
    with pytest.raises(
        ImageNotSupportedError,
        match=r"runs the host program definitely-not-installed-xyz, which is not installed on this machine \(apt-get install xyz\)",
    ):
        resolve_image("acme/tool:1", profiles=profiles)
    assert set(PROFILES) >= {
        "kubelab",
        "python",
        "busybox",
        "alpine",
        "debian",
        "ubuntu",
        "nginx",
        "prometheus",
    }


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        ([], [], ["entry", "default"]),
        ([], ["mine"], ["entry", "mine"]),
        (["cmd"], [], ["cmd"]),
        (["cmd"], ["a"], ["cmd", "a"]),
    ],
)
def test_command_and_args_replace_entrypoint_and_cmd(
    command: list[str], args: list[str], expected: list[str]
) -> None:
    info = ImageInfo(image="x", image_id="x", entrypoint=("entry",), cmd=("default",))
    assert effective_command(info, command=command, args=args) == expected
