"""A request inside the simulated engine, and what a caller that submitted it can observe.

State is lazy: while a request decodes, its token count is ``base + step - origin`` on the
engine's global step counter, so the engine never touches running requests one by one. Only
submitted (tracked) requests store the emission time of each token, for streaming.
"""

from __future__ import annotations

from pals_core.errors import ConfigurationError


class SimRequest:
    """One request. Submitted (tracked) requests record the emission time of every token."""

    __slots__ = (
        "_base",
        "_done",
        "_epoch",
        "_origin",
        "_pf_left",
        "_times",
        "arrival_s",
        "finish_s",
        "first_token_s",
        "output_tokens",
        "prompt_tokens",
        "request_id",
        "scheduled_s",
    )

    def __init__(
        self, request_id: int, arrival_s: float, prompt: int, output: int, tracked: bool
    ) -> None:
        self.request_id = request_id
        self.arrival_s = arrival_s
        self.prompt_tokens = prompt
        self.output_tokens = output
        self.scheduled_s: float | None = None
        """When the scheduler first admitted it (its queue time ends here)."""
        self.first_token_s: float | None = None
        self.finish_s: float | None = None
        self._times: list[float] | None = [] if tracked else None
        self._pf_left = prompt
        self._done = 0
        self._base = 0
        self._origin = 0
        self._epoch = 0

    @property
    def finished(self) -> bool:
        return self.finish_s is not None

    @property
    def tokens_emitted(self) -> int:
        """Output tokens streamed so far (tracked requests; others report 0 or all)."""
        if self._times is not None:
            return len(self._times)
        return self.output_tokens if self.finish_s is not None else 0

    def token_times_s(self, since_index: int = 0) -> list[float]:
        """Emission times of tokens ``since_index`` onward (tracked requests only)."""
        if self._times is None:
            raise ConfigurationError("token times are recorded only for submitted requests")
        return self._times[since_index:]

    def __repr__(self) -> str:
        return (
            f"SimRequest(id={self.request_id}, prompt={self.prompt_tokens}, "
            f"output={self.output_tokens}, emitted={self.tokens_emitted}, "
            f"finished={self.finished})"
        )
