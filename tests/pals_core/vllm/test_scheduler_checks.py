"""PalsScheduler's start-up checks, run inside the vLLM venv (no server): an unsupported vLLM,
a missing control address and data parallel each stop vLLM with a message saying what to do."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.pals_core.vllm import servers

pytestmark = pytest.mark.slow

PROBE = """
import json, os, sys
from types import SimpleNamespace as NS
import vllm
from pals_core.vllm_plugin import PalsScheduler
from pals_core.vllm_plugin.scheduler import PalsAsyncScheduler, PalsSyncScheduler

def attempt(version, control, dp):
    vllm.__version__ = version
    os.environ.pop("PALS_VLLM_CONTROL", None)
    if control:
        os.environ["PALS_VLLM_CONTROL"] = control
    config = NS(parallel_config=NS(data_parallel_size=dp),
                scheduler_config=NS(async_scheduling=True))
    try:
        PalsScheduler(vllm_config=config)
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return "built"

real = vllm.__version__
print(json.dumps({
    "version": real,
    "async_base": PalsAsyncScheduler.__mro__[2].__name__,
    "sync_base": PalsSyncScheduler.__mro__[2].__name__,
    "old": attempt("0.11.0", "unix:/tmp/x.sock", 1),
    "no_control": attempt(real, None, 1),
    "data_parallel": attempt(real, "unix:/tmp/x.sock", 2),
}))
"""


def test_start_up_checks(vllm_python: Path) -> None:
    import json

    result = subprocess.run(
        [str(vllm_python), "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(servers.REPO), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["version"] == servers.VLLM_VERSION
    assert (out["async_base"], out["sync_base"]) == ("AsyncScheduler", "Scheduler")
    assert out["old"].startswith(
        "UnsupportedVLLMVersionError: the PALS scheduler plugin does not "
        "support vLLM 0.11.0; supported: 0.32.x"
    )
    assert "needs PALS_VLLM_CONTROL" in out["no_control"]
    assert "data_parallel_size=2" in out["data_parallel"]
