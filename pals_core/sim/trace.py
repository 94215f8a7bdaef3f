"""Replaying a recorded trace of requests (CSV ``arrival_s,prompt_tokens,output_tokens``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from pals_core.errors import TraceFormatError
from pals_core.sim.workload import Arrival, Workload

_TRACE_COLUMNS = ("arrival_s", "prompt_tokens", "output_tokens")


class TraceWorkload(Workload):
    """Replays a CSV trace ``arrival_s,prompt_tokens,output_tokens`` (optional header line with
    exactly those names). Arrival times are relative to when the node starts and must not
    decrease. A malformed file is refused with the line and column at fault."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(None)
        self.path = Path(path)
        self._rows = _read_trace(self.path)
        self._i = 0

    def peek_next_s(self) -> float:
        if self._i >= len(self._rows):
            return math.inf
        return self._start_s + self._rows[self._i][0]

    def pop(self) -> Arrival:
        offset_s, prompt, output = self._rows[self._i]
        self._i += 1
        return Arrival(self._start_s + offset_s, prompt, output)

    def __len__(self) -> int:
        return len(self._rows)


def _read_trace(path: Path) -> list[tuple[float, int, int]]:
    try:
        text = path.read_text()
    except OSError as err:
        raise TraceFormatError(f"cannot read trace file {path}: {err}") from err
    rows: list[tuple[float, int, int]] = []
    last_s = 0.0
    for line_no, fields in enumerate(csv.reader(text.splitlines()), start=1):
        if not fields or all(not f.strip() for f in fields):
            continue
        if line_no == 1 and tuple(f.strip() for f in fields) == _TRACE_COLUMNS:
            continue
        if len(fields) != 3:
            raise TraceFormatError(
                f"{path}: line {line_no}: expected 3 columns "
                f"({', '.join(_TRACE_COLUMNS)}), got {len(fields)}"
            )
        arrival_s = _parse(path, line_no, 1, fields[0], float)
        if not (math.isfinite(arrival_s) and arrival_s >= 0):
            _bad(path, line_no, 1, fields[0], "a finite number of seconds >= 0")
        if arrival_s < last_s:
            _bad(path, line_no, 1, fields[0], f"a time >= the previous arrival ({last_s})")
        prompt = _parse(path, line_no, 2, fields[1], int)
        output = _parse(path, line_no, 3, fields[2], int)
        if prompt < 1:
            _bad(path, line_no, 2, fields[1], "an integer >= 1")
        if output < 1:
            _bad(path, line_no, 3, fields[2], "an integer >= 1")
        rows.append((arrival_s, prompt, output))
        last_s = arrival_s
    if not rows:
        raise TraceFormatError(
            f"{path}: no requests (expected lines of {', '.join(_TRACE_COLUMNS)})"
        )
    return rows


def _parse[T: (int, float)](path: Path, line: int, col: int, raw: str, kind: type[T]) -> T:
    try:
        return kind(raw.strip())
    except ValueError:
        what = "an integer >= 1" if kind is int else "a number of seconds"
        _bad(path, line, col, raw, what)
        raise  # unreachable


def _bad(path: Path, line: int, col: int, raw: str, allowed: str) -> None:
    raise TraceFormatError(
        f"{path}: line {line}, column {col} ({_TRACE_COLUMNS[col - 1]}): "
        f"expected {allowed}, got {raw.strip()!r}"
    )
