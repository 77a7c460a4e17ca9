"""Which images the process runtime can run, and what running them means.

There are no image layers here: an image name selects a *profile* that says which host
programs stand for the image and what its default ENTRYPOINT/CMD/ENV are. The choice is by
the last component of the image's repository (``docker.io/library/nginx:1.27`` ->
``nginx``), so the same manifests work on a real cluster and in the lab:

========================== ====================================================================
repository ends in         runs
========================== ====================================================================
``kubelab``                this installation's Python (``sys.executable``): a command of
                           ``python``/``python3``/``python3.X`` (with or without a directory)
                           becomes that interpreter, ``kubelab`` its console script; the
                           virtualenv's ``bin`` leads PATH. Default CMD: ``python3``.
``python``                 the host's ``python3`` for ``python``/``python3``; CMD ``python3``
``busybox`` ``alpine``     host programs from PATH (``/bin/sh`` and coreutils), so
``debian`` ``ubuntu``      ``sh -c '...'`` commands work; CMD ``sh`` (``bash`` for debian/ubuntu)
``nginx``                  the host's ``nginx`` (Debian ``nginx-light``); CMD
                           ``nginx -g 'daemon off;'``
``prometheus``             the host's ``prometheus`` (Debian ``prometheus``); ENTRYPOINT
                           ``prometheus``, CMD ``--config.file=/etc/prometheus/prometheus.yml
                           --storage.tsdb.path=/prometheus``
========================== ====================================================================

Anything else is refused with ``ImageNotSupportedError``, which the kubelet reports as
upstream reports an image it cannot pull: ``ErrImagePull`` then ``ImagePullBackOff``, with a
message naming the image and this map (and it retries with back-off, so installing a
missing host program fixes a pod without recreating it). A reference that does not parse
gets ``InvalidImageError`` (upstream's ``InvalidImageName``), which is not retried.

Commands keep host paths: ``/usr/bin/env`` is the host's. An absolute program path that
does not exist on this machine is looked up by its base name on PATH, because images keep
programs in other places than Debian does (``/bin/prometheus`` is ``/usr/bin/prometheus``).

The image ID reported in container statuses is ``kubelab-process://<profile>@<program>``:
the profile and the host program that stands for the image.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from control.kubelet.runtime.protocol import ImageInfo, ImageNotSupportedError, InvalidImageError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# distribution/reference's grammar.
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)
_NAME_MAX = 255


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A parsed, normalized image reference (``nginx`` -> ``docker.io/library/nginx:latest``)."""

    domain: str
    path: str
    tag: str
    digest: str

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def last_component(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image(image: str) -> ImageReference:
    """Parse and normalize as the kubelet's applyDefaultImageTag (``:latest`` when untagged)."""
    match = _REFERENCE.match(image)
    if not image or match is None:
        raise InvalidImageError(
            f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": '
            "invalid reference format"
        )
    name = match.group("name")
    if len(name) > _NAME_MAX:
        raise InvalidImageError(
            f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": '
            f"repository name must not be more than {_NAME_MAX} characters"
        )
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if path != path.lower():
        raise InvalidImageError(
            f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": '
            "repository name must be lowercase"
        )
    tag = match.group("tag") or ""
    digest = match.group("digest") or ""
    if not tag and not digest:
        tag = "latest"
    return ImageReference(domain=domain, path=path, tag=tag, digest=digest)


@dataclass(frozen=True, kw_only=True)
class Profile:
    """How one family of images runs on this host."""

    name: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    # The host program that must exist for the image to be runnable, and how to install it.
    program: str = ""
    install_hint: str = ""
    # argv[0] rewrites: a command naming one of these runs the mapped program instead.
    aliases: Mapping[str, str] = field(default_factory=dict)
    path_prefix: str = ""


def _python_aliases(target: str) -> dict[str, str]:
    names = ["python", "python3", f"python3.{sys.version_info.minor}"]
    aliases = {}
    for name in names:
        for directory in ("", "/usr/bin/", "/usr/local/bin/", "/bin/"):
            aliases[directory + name] = target
    return aliases


def _kubelab_profile() -> Profile:
    executable = sys.executable
    aliases = _python_aliases(executable)
    console_script = Path(executable).parent / "kubelab"
    if console_script.exists():
        for directory in ("", "/usr/bin/", "/usr/local/bin/"):
            aliases[directory + "kubelab"] = str(console_script)
    return Profile(
        name="kubelab",
        cmd=("python3",),
        program=executable,
        aliases=aliases,
        path_prefix=str(Path(executable).parent),
    )


def _host_python_profile() -> Profile:
    host = shutil.which("python3", path=DEFAULT_PATH) or "python3"
    return Profile(
        name="python",
        cmd=("python3",),
        program="python3",
        install_hint="apt-get install python3",
        aliases=_python_aliases(host),
    )


def _profiles() -> dict[str, Profile]:
    shell = Profile(name="busybox", cmd=("sh",), program="sh", install_hint="apt-get install dash")
    return {
        "kubelab": _kubelab_profile(),
        "python": _host_python_profile(),
        "busybox": shell,
        "alpine": Profile(name="alpine", cmd=("/bin/sh",), program="sh", install_hint="apt-get install dash"),
        "debian": Profile(name="debian", cmd=("bash",), program="sh", install_hint="apt-get install dash"),
        "ubuntu": Profile(name="ubuntu", cmd=("bash",), program="sh", install_hint="apt-get install dash"),
        "nginx": Profile(
            name="nginx",
            cmd=("nginx", "-g", "daemon off;"),
            program="nginx",
            install_hint="apt-get install nginx-light",
        ),
        "prometheus": Profile(
            name="prometheus",
            entrypoint=("prometheus",),
            cmd=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"),
            program="prometheus",
            install_hint="apt-get install prometheus",
        ),
    }


PROFILES: dict[str, Profile] = _profiles()


@dataclass(frozen=True, kw_only=True)
class ResolvedImage:
    reference: ImageReference
    profile: Profile
    program_path: str

    @property
    def image_id(self) -> str:
        return f"kubelab-process://{self.profile.name}@{self.program_path}"

    def info(self, image: str) -> ImageInfo:
        env = {
            "PATH": f"{self.profile.path_prefix}:{DEFAULT_PATH}" if self.profile.path_prefix else DEFAULT_PATH
        }
        return ImageInfo(
            image=image,
            image_id=self.image_id,
            entrypoint=self.profile.entrypoint,
            cmd=self.profile.cmd,
            env=env,
        )


def resolve_image(image: str, *, profiles: Mapping[str, Profile] = PROFILES) -> ResolvedImage:
    """The profile for ``image``; ``InvalidImageError`` or ``ImageNotSupportedError`` otherwise."""
    reference = parse_image(image)
    component = reference.last_component
    profile = profiles.get(component)
    if profile is None:
        known = ", ".join(sorted(profiles))
        raise ImageNotSupportedError(
            f'image "{image}" is not supported by the kubelab process runtime: it runs only images whose '
            f"repository ends in one of {known} (see control/kubelet/runtime/images.py)"
        )
    program = profile.program
    path = program if os.path.isabs(program) else shutil.which(program, path=DEFAULT_PATH)
    if not path or not os.access(path, os.X_OK):
        hint = f" ({profile.install_hint})" if profile.install_hint else ""
        raise ImageNotSupportedError(
            f'image "{image}" runs the host program {program}, which is not installed on this machine{hint}'
        )
    return ResolvedImage(reference=reference, profile=profile, program_path=path)


def resolve_command(resolved: ResolvedImage, argv: Sequence[str], *, search_path: str) -> list[str]:
    """The argv to execute on the host: aliases applied, missing absolute programs found on PATH."""
    if not argv:
        return []
    program = resolved.profile.aliases.get(argv[0], argv[0])
    if os.path.isabs(program) and not os.path.exists(program):
        found = shutil.which(os.path.basename(program), path=search_path)
        if found:
            program = found
    return [program, *argv[1:]]


def effective_command(info: ImageInfo, *, command: Sequence[str], args: Sequence[str]) -> list[str]:
    """Kubernetes' rule: ``command`` replaces ENTRYPOINT, ``args`` replaces CMD; args alone
    follow the image's ENTRYPOINT; a command alone drops CMD."""
    if command:
        return [*command, *args]
    return [*info.entrypoint, *(args or info.cmd)]
