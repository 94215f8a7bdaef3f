"""Fixtures for the tests against a real vLLM server (CPU build, tiny random-weight model).

The vLLM venv comes from ``scripts/vllm_venv.sh`` (``.ci/run`` builds or reuses it). Without it
these tests skip with the reason, unless ``CI`` is set, where that is a failure (the rule the
PostgreSQL tests follow).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pals_core.vllm import servers


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    python = servers.vllm_python()
    if python is None:
        reason = (
            f"no vLLM venv at {servers.vllm_venv()} (build it with `bash scripts/vllm_venv.sh`)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so the vLLM tests must run")
        pytest.skip(reason)
    return python


@pytest.fixture(scope="session")
def tiny_model(vllm_python: Path) -> Path:
    return servers.tiny_model(vllm_python)


@pytest.fixture(scope="session")
def control_dir() -> Iterator[Path]:
    """A short folder for Unix sockets (their paths are limited to ~107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="palsctl-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="module")
def vllm_server(
    request: pytest.FixtureRequest,
    vllm_python: Path,
    tiny_model: Path,
    log_dir: Path,
    control_dir: Path,
) -> Iterator[servers.Server]:
    """One vLLM per test module, with the PALS plugin when the module sets ``WITH_PLUGIN``
    (its channel at ``servers.control_address``), ``--max-num-seqs`` ``START_MAX_NUM_SEQS``."""
    plugin = getattr(request.module, "WITH_PLUGIN", False)
    server = servers.start_vllm(
        vllm_python,
        tiny_model,
        log_dir / f"vllm-{request.module.__name__.rsplit('.')[-1]}.log",
        max_num_seqs=request.module.START_MAX_NUM_SEQS,
        control=servers.control_address(control_dir) if plugin else None,
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sim_node(log_dir: Path) -> Iterator[servers.Server]:
    """A ``pals sim-node`` whose GPUs stand in for the GPUs vLLM would run on."""
    server = servers.start_pals(
        [
            "sim-node",
            "--model",
            "llama-3.1-8b",
            "--gpu",
            "H100-SXM",
            "--load",
            "poisson",
            "--rate",
            "4",
        ],
        log_dir / "sim-node.log",
        "/health",
    )
    yield server
    server.stop()
