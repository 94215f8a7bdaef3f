"""The GPU restore state file: original power limits saved before the first write, so a run
that crashed (``kill -9``) can be undone by ``pals gpu restore``."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pals_core.device.gpu import GPU
from pals_core.errors import GPUError

log = logging.getLogger(__name__)

STATE_FILE_NAME = "gpu-restore.json"


@dataclass(frozen=True, slots=True)
class SavedLimit:
    uuid: str
    index: int
    name: str
    original_w: float
    default_w: float
    pid: int


class RestoreStateFile:
    """Original limits saved before the first write, so a crashed run can be undone.

    Keyed by GPU UUID (stable whatever ``CUDA_VISIBLE_DEVICES`` says). An entry already present
    is kept: it came from an earlier run that did not finish cleanly, and its value is the one
    the GPU had before anybody changed it. A run removes only its own entries (by pid) when it
    restores them.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, SavedLimit]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise GPUError(f"cannot read the GPU restore state file {self.path}: {err}") from err
        return {uuid: SavedLimit(uuid=uuid, **entry) for uuid, entry in data["gpus"].items()}

    def _write(self, entries: dict[str, SavedLimit]) -> None:
        try:
            self._write_atomically(entries)
        except OSError as err:
            raise GPUError(
                f"cannot save the original GPU power limits to {self.path} ({err}); nothing was "
                "written to the GPUs. Point PALS_DATA_DIR at a writable folder"
            ) from err

    def _write_atomically(self, entries: dict[str, SavedLimit]) -> None:
        if not entries:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "version": 1,
            "gpus": {
                e.uuid: {
                    "index": e.index,
                    "name": e.name,
                    "original_w": e.original_w,
                    "default_w": e.default_w,
                    "pid": e.pid,
                }
                for e in entries.values()
            },
        }
        fd, tmp = tempfile.mkstemp(prefix=".gpu-restore-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def remember(self, gpu: GPU, original_w: float) -> None:
        entries = self.load()
        if gpu.uuid in entries:
            log.warning(
                "GPU %d (%s) has a saved original limit of %.1f W from an earlier run that did "
                "not restore it; keeping that value (`pals gpu restore` puts it back)",
                gpu.index,
                gpu.uuid,
                entries[gpu.uuid].original_w,
            )
            return
        entries[gpu.uuid] = SavedLimit(
            uuid=gpu.uuid,
            index=gpu.index,
            name=gpu.name,
            original_w=original_w,
            default_w=gpu.power_limit_constraints().default_w,
            pid=os.getpid(),
        )
        self._write(entries)

    def forget(self, uuids: Sequence[str], *, pid: int | None = None) -> None:
        """Drop the entries of ``uuids`` (only those written by ``pid`` when given)."""
        entries = self.load()
        kept = {
            u: e for u, e in entries.items() if u not in uuids or (pid is not None and e.pid != pid)
        }
        if kept != entries:
            self._write(kept)


def default_state_path() -> Path:
    from pals_core.settings import get_settings

    return get_settings().data_dir / STATE_FILE_NAME
