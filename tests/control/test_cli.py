"""The `kubelab` command line: help, flag validation, exit codes and messages.

Everything here runs without an API server: `up` is driven into its failure paths
(port taken, not ready in time) and into "already running" with a real process holding
the pidfile. The successful `up` against the real server is tested in tests/e2e.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from cryptography import x509

from control import cli, lab
from tests.control.lab_processes import gone, holders


@pytest.fixture
def layout(tmp_path: Path) -> lab.Layout:
    return lab.Layout(tmp_path / "lab")


@pytest.fixture
def start_holder(layout: lab.Layout) -> Iterator[Callable[..., int]]:
    yield from holders(layout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m control.cli ...` as a separate process (for `server`, which owns logging and signals)."""
    return subprocess.run(
        [sys.executable, "-m", "control.cli", *args], capture_output=True, text=True, timeout=60, check=False
    )


# --- help ---------------------------------------------------------------------------------

FLAGS = {
    "up": ["--data-dir", "--api-port", "--bind-address", "--store", "--log-level", "--timeout"],
    "server": ["--data-dir", "--api-port", "--bind-address", "--store", "--log-level"],
    "down": ["--data-dir", "--timeout"],
    "status": ["--data-dir"],
    "kubeconfig": ["--data-dir", "--print", "--user", "--group", "--validity-period", "-o"],
}


@pytest.mark.parametrize("command", sorted(FLAGS))
def test_every_command_explains_its_flags_with_examples(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: kubelab {command}")
    assert (
        f"\nexamples:\n  kubelab {command}" in out
        or f"\nexamples:\n  export KUBECONFIG=$(kubelab {command})" in out
    )
    for flag in FLAGS[command]:
        assert re.search(rf"^\s+{flag}\b.*\S", out, re.MULTILINE), f"{flag} undocumented"
    assert "(default:" in out or command in ("status", "kubeconfig")


def test_top_level_help_lists_every_command_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in FLAGS:
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command
    assert "exit codes: 0 ok, 1 failed" in out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == cli.EXIT_USAGE
    assert capsys.readouterr().err.startswith("usage: kubelab")


def test_the_module_runs_as_a_program() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"kubelab \d+\.\d+\.\d+\S*\n", result.stdout)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["up", "--api-port", "0"], "port 0 is out of range"),
        (["up", "--api-port", "https"], "'https' is not a port number"),
        (["up", "--bind-address", "::1"], "IPv6"),
        (["up", "--bind-address", "localhost"], "not an IP address"),
        (["server", "--store", "mysql://db"], "unknown scheme 'mysql'"),
        (["server", "--store", "etcd://127.0.0.1"], "must be host:port"),
        (["up", "--timeout", "-1"], "not a positive number of seconds"),
        (["down", "--timeout", "soon"], "not a positive number of seconds"),
        (["up", "--log-level", "loud"], "invalid choice: 'loud'"),
        (["nap"], "invalid choice: 'nap'"),
    ],
)
def test_bad_flags_exit_2_saying_what_is_wrong(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == cli.EXIT_USAGE
    assert message in capsys.readouterr().err


# --- up -----------------------------------------------------------------------------------


def test_up_on_a_taken_port_names_the_port_and_the_flag(
    layout: lab.Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = cli.main(["up", "--data-dir", str(layout.data_dir), "--api-port", str(port)])
    assert code == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert f"kubelab up: error: port {port} on 127.0.0.1 is already in use" in err
    assert f"--api-port {port + 1}" in err
    assert not layout.data_dir.exists()  # failed before touching anything


def test_up_that_is_not_ready_in_time_stops_the_server_and_says_how_to_debug(
    layout: lab.Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    # No API server answers /readyz within 50 ms of being spawned.
    code = cli.main(
        ["up", "--data-dir", str(layout.data_dir), "--api-port", str(free_port()), "--timeout", "0.05"]
    )
    assert code == cli.EXIT_FAILED
    captured = capsys.readouterr()
    assert "generating certificates…" in captured.err
    assert "waiting for /readyz" in captured.err
    failure = re.search(r"kubelab up: error: the kubelab server \(pid (\d+)\) (.*)", captured.err)
    assert failure, captured.err
    assert failure.group(2).startswith("did not answer /readyz with 200 within 0.05s")
    assert failure.group(2).endswith("it has been stopped.")
    assert f"run it in the foreground: kubelab server --data-dir {layout.data_dir}" in captured.err
    assert gone(int(failure.group(1)))
    assert lab.running_pid(layout.pid_file(lab.SERVER)) is None
    # The data directory was still prepared, so the next `up` resumes it.
    assert layout.kubeconfig.is_file() and layout.settings_file.is_file()


def test_up_when_already_running_says_so_and_starts_nothing(
    layout: lab.Layout, start_holder: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    lab.prepare(layout, lab.Settings(api_port=free_port(), nodes=0))
    pid = start_holder()
    start_holder(lab.CONTROLLERS)  # every process of the lab runs: `up` restarts nothing
    assert cli.main(["up", "--data-dir", str(layout.data_dir)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert f"kubelab is already running on {lab.load_settings(layout).server_url} (pid {pid}" in out
    assert f"export KUBECONFIG={layout.kubeconfig}" in out
    assert "not applied" not in out
    assert not layout.log_file(lab.SERVER).exists()  # no server was spawned
    assert not layout.log_file(lab.CONTROLLERS).exists()

    assert cli.main(["up", "--data-dir", str(layout.data_dir), "--api-port", str(free_port())]) == cli.EXIT_OK
    assert "differ from the running lab's settings and were not applied" in capsys.readouterr().out


# --- down, status, kubeconfig -------------------------------------------------------------


def test_down_when_nothing_runs_is_fine(layout: lab.Layout, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["down", "--data-dir", str(layout.data_dir)]) == cli.EXIT_OK
    assert capsys.readouterr().out == f"nothing is running in {layout.data_dir}\n"


def test_down_stops_the_server_and_says_so(
    layout: lab.Layout, start_holder: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    pid = start_holder()
    assert cli.main(["down", "--data-dir", str(layout.data_dir)]) == cli.EXIT_OK
    assert capsys.readouterr().out == f"stopped server (pid {pid})\n"
    assert gone(pid)
    assert cli.main(["down", "--data-dir", str(layout.data_dir)]) == cli.EXIT_OK
    assert "nothing is running" in capsys.readouterr().out


def test_down_kills_a_server_that_ignores_sigterm(
    layout: lab.Layout, start_holder: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    pid = start_holder(mode="stubborn")
    assert cli.main(["down", "--data-dir", str(layout.data_dir), "--timeout", "0.1"]) == cli.EXIT_OK
    assert (
        capsys.readouterr().out == f"stopped server (pid {pid}) with SIGKILL: it ignored SIGTERM for 0.1s\n"
    )
    assert gone(pid)


def test_status_exit_codes(
    layout: lab.Layout, start_holder: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    status = ["status", "--data-dir", str(layout.data_dir)]
    assert cli.main(status) == cli.EXIT_NOT_RUNNING
    assert capsys.readouterr().out.startswith(
        f"kubelab: no lab in {layout.data_dir}; create one with `kubelab up"
    )

    settings = lab.Settings(api_port=free_port())
    lab.prepare(layout, settings)
    assert cli.main(status) == cli.EXIT_NOT_RUNNING
    assert capsys.readouterr().out.startswith(f"kubelab: not running (data dir {layout.data_dir})")

    # Running (it holds the pidfile) but nothing answers /readyz: exit 1, with the reason.
    pid = start_holder()
    assert cli.main(status) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert re.search(r"^state:\s+running, not ready$", out, re.MULTILINE)
    assert re.search(rf"^pid:\s+{pid}$", out, re.MULTILINE)
    assert re.search(rf"^url:\s+{re.escape(settings.server_url)}$", out, re.MULTILINE)
    assert re.search(r"^store:\s+sqlite://$", out, re.MULTILINE)
    assert re.search(r"^readyz:\s+failed: connection refused$", out, re.MULTILINE)
    assert re.search(rf"^kubeconfig:\s+{re.escape(str(layout.kubeconfig))}$", out, re.MULTILINE)


def test_status_lists_other_lab_processes(
    layout: lab.Layout, start_holder: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    lab.prepare(layout, lab.Settings(api_port=free_port()))
    start_holder()
    node = start_holder("node-1")
    cli.main(["status", "--data-dir", str(layout.data_dir)])
    assert re.search(rf"^node-1:\s+running \(pid {node}\)$", capsys.readouterr().out, re.MULTILINE)


def test_kubeconfig_prints_the_path_or_the_content(
    layout: lab.Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["kubeconfig", "--data-dir", str(layout.data_dir)]) == cli.EXIT_FAILED
    assert "there is no kubeconfig in" in capsys.readouterr().err
    lab.prepare(layout, lab.Settings())
    assert cli.main(["kubeconfig", "--data-dir", str(layout.data_dir)]) == cli.EXIT_OK
    assert capsys.readouterr().out == f"{layout.kubeconfig}\n"
    assert cli.main(["kubeconfig", "--data-dir", str(layout.data_dir), "--print"]) == cli.EXIT_OK
    assert capsys.readouterr().out == layout.kubeconfig.read_text()


def test_kubeconfig_for_a_user_is_printed_or_written_owner_only(
    layout: lab.Layout, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lab.prepare(layout, lab.Settings())
    data_dir = ["--data-dir", str(layout.data_dir)]
    assert cli.main(["kubeconfig", *data_dir, "--user", "jane", "--group", "dev", "--group", "dev"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["users"][0]["name"] == "jane"
    cert = x509.load_pem_x509_certificate(
        base64.b64decode(printed["users"][0]["user"]["client-certificate-data"])
    )
    assert cert.subject.rfc4514_string() == "CN=jane,O=dev"
    target = tmp_path / "jane.kubeconfig"
    assert cli.main(["kubeconfig", *data_dir, "--user", "jane", "-o", str(target)]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    assert out == "" and f"wrote a kubeconfig for user 'jane' to {target}" in err
    assert target.stat().st_mode & 0o777 == 0o600
    written = yaml.safe_load(target.read_text())
    assert written["current-context"] == "jane@kubelab"
    lifetime = x509.load_pem_x509_certificate(
        base64.b64decode(written["users"][0]["user"]["client-certificate-data"])
    )
    assert lifetime.not_valid_after_utc - lifetime.not_valid_before_utc > timedelta(days=364)
    assert cli.main(["kubeconfig", *data_dir, "--user", "jane", "--validity-period", "2h"]) == cli.EXIT_OK
    short = yaml.safe_load(capsys.readouterr().out)["users"][0]["user"]["client-certificate-data"]
    short_cert = x509.load_pem_x509_certificate(base64.b64decode(short))
    assert short_cert.not_valid_after_utc - short_cert.not_valid_before_utc == timedelta(hours=2, minutes=5)
    admin_copy = tmp_path / "admin.kubeconfig"
    assert cli.main(["kubeconfig", *data_dir, "-o", str(admin_copy)]) == cli.EXIT_OK
    assert admin_copy.read_bytes() == layout.kubeconfig.read_bytes()


def test_kubeconfig_for_a_user_refuses_bad_names_and_groups_without_a_user(
    layout: lab.Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.prepare(layout, lab.Settings())
    data_dir = ["--data-dir", str(layout.data_dir)]
    for without_user in (["--group", "dev"], ["--validity-period", "24h"]):
        assert cli.main(["kubeconfig", *data_dir, *without_user]) == cli.EXIT_USAGE
        assert "--group and --validity-period need --user" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        cli.main(["kubeconfig", *data_dir, "--user", "jane", "--validity-period", "1d"])
    assert exited.value.code == cli.EXIT_USAGE
    assert "'1d' is not a duration" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        cli.main(["kubeconfig", *data_dir, "--user", ""])
    assert exited.value.code == cli.EXIT_USAGE
    assert "is not a usable user or group name" in capsys.readouterr().err


async def test_each_control_plane_component_runs_as_its_own_user(
    layout: lab.Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    from control.controllers import manager
    from control.scheduler import run

    lab.prepare(layout, lab.Settings())
    users: dict[str, tuple[str, bool]] = {}
    stop = asyncio.Event()

    def recorder(component: str) -> Callable[..., Coroutine[Any, Any, None]]:
        async def fake_run(*, config: Any, stop: asyncio.Event, options: Any = None) -> None:
            subject = x509.load_pem_x509_certificate(config.client_cert_data).subject.rfc4514_string()
            users[component] = (subject, getattr(options, "use_service_account_credentials", False))
            if len(users) == 2:
                stop.set()
            await stop.wait()

        return fake_run

    monkeypatch.setattr(manager, "run_controller_manager", recorder("controller-manager"))
    monkeypatch.setattr(run, "run_scheduler", recorder("scheduler"))
    tasks = cli._start_components(layout, components=("controller-manager", "scheduler"), stop=stop)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    assert users == {
        "controller-manager": ("CN=system:kube-controller-manager", True),
        "scheduler": ("CN=system:kube-scheduler", False),
    }


def test_data_dir_comes_from_the_environment(
    layout: lab.Layout, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.prepare(layout, lab.Settings())
    monkeypatch.setenv(lab.DATA_DIR_ENV, str(layout.data_dir))
    assert cli.main(["kubeconfig"]) == cli.EXIT_OK
    assert capsys.readouterr().out == f"{layout.kubeconfig}\n"


def test_a_broken_lab_json_is_reported_with_the_fix(
    layout: lab.Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    layout.data_dir.mkdir()
    layout.settings_file.write_text("{")
    assert cli.main(["up", "--data-dir", str(layout.data_dir)]) == cli.EXIT_FAILED
    assert "lab.json is unreadable" in capsys.readouterr().err


def test_an_unusable_data_dir_is_reported_with_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = cli.main(["up", "--data-dir", str(blocker / "lab"), "--api-port", str(free_port())])
    assert code == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert f"kubelab up: error: Not a directory: {blocker / 'lab'}" in err
    assert "choose another --data-dir" in err


# --- server -------------------------------------------------------------------------------


def test_server_refuses_a_data_dir_whose_server_is_running(
    layout: lab.Layout, start_holder: Callable[..., int]
) -> None:
    pid = start_holder()
    result = run_cli("server", "--data-dir", str(layout.data_dir), "--api-port", str(free_port()))
    assert result.returncode == cli.EXIT_FAILED
    event = orjson.loads(result.stderr.splitlines()[-1])
    assert event["level"] == "error"
    assert f"already running on this data directory (pid {pid}" in event["msg"]


def test_server_on_a_taken_port_logs_a_clear_error(layout: lab.Layout) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = run_cli("server", "--data-dir", str(layout.data_dir), "--api-port", str(port))
    assert result.returncode == cli.EXIT_FAILED
    event = orjson.loads(result.stderr.splitlines()[-1])
    assert event["level"] == "error"
    assert f"port {port} on 127.0.0.1 is already in use" in event["msg"]
    assert not layout.pid_file(lab.SERVER).exists()


# --- logs ---------------------------------------------------------------------------------


def test_log_events_are_one_json_object_per_line() -> None:
    formatter = cli.JSONLogFormatter()
    record = logging.LogRecord("kubelab", logging.INFO, __file__, 1, "API server ready %s", ("now",), None)
    record.url = "https://127.0.0.1:6443"
    event = orjson.loads(formatter.format(record))
    assert event.pop("time").endswith("Z")
    assert event == {
        "level": "info",
        "logger": "kubelab",
        "msg": "API server ready now",
        "url": "https://127.0.0.1:6443",
    }
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failed = logging.LogRecord("kubelab", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = formatter.format(failed)
    assert "\n" not in line
    assert "RuntimeError: boom" in orjson.loads(line)["error"]


def test_failed_start_shows_log_events_readably() -> None:
    line = orjson.dumps(
        {
            "time": "t",
            "level": "error",
            "logger": "kubelab",
            "msg": "API server failed",
            "pid": 7,
            "error": "Trace\n  x",
        }
    ).decode()
    assert cli._readable_log_line(line) == ["error API server failed pid=7", "    Trace", "      x"]
    assert cli._readable_log_line("plain text") == ["plain text"]
    assert cli._readable_log_line("[1, 2]") == ["[1, 2]"]
