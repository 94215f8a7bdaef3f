"""scripts/vllm_venv.sh: reuses a finished venv, and explains a missing Python (no build here;
the vLLM tests exercise a real one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "vllm_venv.sh"


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": env.get("HOME", "/nonexistent")}
    return subprocess.run(
        ["bash", str(SCRIPT)], env=base | env, capture_output=True, text=True, timeout=60
    )


def test_a_finished_venv_is_reused_as_is(tmp_path: Path) -> None:
    venv = tmp_path / "vllm-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\nexit 1\n")
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".pals-vllm-ready").touch()
    result = run({"PALS_VLLM_VENV": str(venv), "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(venv) and result.stderr == ""


def test_the_default_location_is_keyed_by_version(tmp_path: Path) -> None:
    venv = tmp_path / "cache" / "pals" / "vllm-9.9.9"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch(mode=0o755)
    (venv / ".pals-vllm-ready").touch()
    result = run({"XDG_CACHE_HOME": str(tmp_path / "cache"), "VLLM_VERSION": "9.9.9"})
    assert result.stdout.strip() == str(venv)


def test_no_python_is_explained(tmp_path: Path) -> None:
    result = run(
        {
            "PALS_VLLM_VENV": str(tmp_path / "venv"),
            "PYENV_ROOT": str(tmp_path / "none"),
            "VLLM_PY_MINORS": "97 98",
            "HOME": str(tmp_path),
        }
    )
    assert result.returncode != 0
    assert "no Python 3.{97,98} found (set VLLM_PYTHON=" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_a_folder_that_is_not_a_venv_is_left_alone(tmp_path: Path) -> None:
    precious = tmp_path / "data"
    precious.mkdir()
    (precious / "keep.txt").write_text("x")
    result = run({"PALS_VLLM_VENV": str(precious), "VLLM_PYTHON": "/bin/true"})
    assert result.returncode != 0 and "is not a venv" in result.stderr
    assert (precious / "keep.txt").exists()
