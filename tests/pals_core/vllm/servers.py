"""Start and stop the real processes these tests drive: vLLM (from its cached venv), ``pals
proxy`` and ``pals sim-node`` (from this project's venv). Each binds 127.0.0.1 on a free port."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]
VLLM_VERSION = os.environ.get("VLLM_VERSION", "0.32.0")
MODEL_SCRIPT = Path(__file__).with_name("make_tiny_model.py")
SERVED_MODEL = "tiny-llama"
MAX_MODEL_LEN = 32768
"""Long enough for streams that last seconds (``ignore_eos``), so a running count is observable."""


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pals"


def vllm_venv() -> Path:
    """Where scripts/vllm_venv.sh builds the venv (the same rule)."""
    return Path(os.environ.get("PALS_VLLM_VENV") or cache_dir() / f"vllm-{VLLM_VERSION}")


def vllm_python() -> Path | None:
    venv = vllm_venv()
    ready = (venv / ".pals-vllm-ready").exists() and (venv / "bin" / "python").exists()
    return venv / "bin" / "python" if ready else None


def control_address(control_dir: Path) -> str:
    """The plugin's channel for the vLLM of a test module (a Unix socket)."""
    return f"unix:{control_dir}/plugin.sock"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tiny_model(python: Path) -> Path:
    """The tiny Llama model + tokenizer, generated once per version of the generator script."""
    key = hashlib.sha256(MODEL_SCRIPT.read_bytes()).hexdigest()[:12]
    folder = cache_dir() / "models" / f"tiny-llama-{key}"
    if (folder / "model.safetensors").exists():
        return folder
    building = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run([str(python), str(MODEL_SCRIPT), str(building)], check=True, timeout=300)
    shutil.rmtree(folder, ignore_errors=True)
    building.rename(folder)
    return folder


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # vLLM's engine core is a child
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start(
    argv: Sequence[str], *, port: int, log_path: Path, env: Mapping[str, str], ready_path: str
) -> Server:
    log = log_path.open("wb")
    process = subprocess.Popen(
        list(argv),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(env),
        cwd=REPO,
        start_new_session=True,
    )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    if ready_path == "":
        return server
    try:
        return wait_ready(server, ready_path)
    except BaseException:  # also a test timeout while waiting: leave no server behind
        server.stop()
        raise


def wait_ready(server: Server, path: str, timeout_s: float = 300.0) -> Server:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{server.log_tail()}")
        try:
            if httpx.get(server.base_url + path, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"the server was not ready after {timeout_s:.0f} s:\n{server.log_tail()}")


def start_vllm(
    python: Path, model: Path, log_path: Path, *, max_num_seqs: int, control: str | None
) -> Server:
    """vLLM's OpenAI server on the tiny model; with the PALS plugin when ``control`` is given."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PALS_", "VLLM_"))}
    env |= {
        "PYTHONPATH": str(REPO),  # the plugin, straight from this checkout
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "OMP_NUM_THREADS": "1",
    }
    argv = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--served-model-name",
        SERVED_MODEL,
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--max-num-seqs",
        str(max_num_seqs),
        "--dtype",
        "float32",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if control is not None:
        env["PALS_VLLM_CONTROL"] = control
        argv += ["--scheduler-cls", "pals_core.vllm_plugin.PalsScheduler"]
    server = start(argv, port=port, log_path=log_path, env=env, ready_path="/health")
    try:
        warm_up(server.base_url, max_num_seqs)
    except BaseException:
        server.stop()
        raise
    return server


def warm_up(base_url: str, concurrency: int) -> None:
    """Serve a few batches of every size up to ``concurrency``: vLLM compiles new batch shapes on
    first use, which would otherwise stall the first measured requests."""

    async def one(client: httpx.AsyncClient) -> None:
        body = {"model": SERVED_MODEL, "prompt": "warm up", "max_tokens": 8, "ignore_eos": True}
        response = await client.post(base_url + "/v1/completions", json=body)
        response.raise_for_status()

    async def all_sizes() -> None:
        async with httpx.AsyncClient(timeout=120) as client:
            for size in (1, 4, concurrency):
                await asyncio.gather(*(one(client) for _ in range(size)))

    asyncio.run(all_sizes())


def start_pals(args: Sequence[str], log_path: Path, ready_path: str) -> Server:
    """``pals <args> --port P`` from this project's venv."""
    port = free_port()
    argv = [sys.executable, "-m", "pals_core", *args, "--host", "127.0.0.1", "--port", str(port)]
    return start(argv, port=port, log_path=log_path, env=os.environ, ready_path=ready_path)
