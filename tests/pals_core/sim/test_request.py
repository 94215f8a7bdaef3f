"""SimRequest: what a caller can observe of a request."""

from __future__ import annotations

import pytest

from pals_core.errors import ConfigurationError
from pals_core.sim import SimRequest


def test_a_new_request_has_emitted_nothing() -> None:
    req = SimRequest(7, arrival_s=1.5, prompt=10, output=3, tracked=True)
    assert (req.request_id, req.arrival_s, req.prompt_tokens, req.output_tokens) == (7, 1.5, 10, 3)
    assert req.tokens_emitted == 0 and not req.finished and req.first_token_s is None
    assert req.token_times_s() == [] and "emitted=0" in repr(req)


def test_untracked_requests_do_not_record_token_times() -> None:
    req = SimRequest(1, arrival_s=0.0, prompt=10, output=3, tracked=False)
    with pytest.raises(ConfigurationError, match="submitted"):
        req.token_times_s()
