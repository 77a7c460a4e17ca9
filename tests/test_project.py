"""Project-wide checks: the import layering in pyproject.toml holds, and ruff is clean."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_import_layering_contracts_hold():
    result = _run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 broken" in result.stdout


def test_ruff_is_clean():
    result = _run(str(BIN / "ruff"), "check", "control", "addons", "dashboards", "tests", "bench", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr
