from __future__ import annotations

from pathlib import Path

import pytest

from pals_core.errors import ProfileError, ProfileMismatchError
from pals_core.model import NodeIdentity, Profile, load_model_for_node
from tests.pals_core.model.synthetic import synthetic_profile


def test_profile_round_trips_through_json(tmp_path: Path) -> None:
    profile = synthetic_profile()
    path = tmp_path / "profile.json"
    profile.save(path)
    assert Profile.load(path) == profile


def test_profile_for_another_node_is_refused_with_every_difference() -> None:
    profile = synthetic_profile()
    profile.check_matches(NodeIdentity("H100-SXM", 1, "llama-3.1-8b"))
    with pytest.raises(ProfileMismatchError) as err:
        profile.check_matches(NodeIdentity("A100-SXM", 2, "llama-3.1-8b"))
    message = str(err.value)
    assert "GPU type" in message and "GPU count" in message and "model" not in message.split(";")[0]
    assert err.value.differences == [
        "GPU type: profile 'H100-SXM', node 'A100-SXM'",
        "GPU count: profile 1, node 2",
    ]


def test_unreadable_profile_is_a_profile_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format_version": 99, "metadata": {}, "points": []}')
    with pytest.raises(ProfileError, match="format_version"):
        Profile.load(bad)
    with pytest.raises(ProfileError, match="cannot read"):
        Profile.load(tmp_path / "missing.json")


def test_load_model_for_node(tmp_path: Path) -> None:
    path = tmp_path / "node.json"
    node = NodeIdentity("H100-SXM", 1, "llama-3.1-8b")
    assert load_model_for_node(path, node) is None  # no profile: the caller profiles or runs safe
    synthetic_profile().save(path)
    model = load_model_for_node(path, node)
    assert model is not None and model.num_gpus == 1
    with pytest.raises(ProfileMismatchError, match=r"model: profile 'llama-3\.1-8b', node 'qwen"):
        load_model_for_node(path, NodeIdentity("H100-SXM", 1, "qwen3-30b-a3b"))


def test_a_non_utf8_profile_is_a_profile_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('{"notes": "caf\u00e9"}'.encode("latin-1"))
    with pytest.raises(ProfileError, match=r"latin1\.json is not UTF-8"):
        Profile.load(path)
