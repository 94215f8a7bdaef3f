"""Every `gridlink ...` and `pals ...` command shown in the README and docs/ exists in the CLI.

The docs show commands in fenced blocks and inline code; each one is walked down the Typer app's
command tree: every word that names a subcommand must be one, a group must be followed by one of
its subcommands, and every ``--option`` shown must be an option of the command it was shown with
(or, for ``a | b`` alternatives, of a sibling command). A renamed or dropped command or option
then fails here instead of misleading a reader.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from gridlink.cli import app as gridlink_app
from pals_core.cli import app as pals_app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
APPS = {"gridlink": gridlink_app, "pals": pals_app}
_COMMAND = re.compile(r"(?:^|[\s`(])(?:\.venv/bin/)?(gridlink|pals)\s+([a-z][^`\n]*)")
_LINE_START = re.compile(r"^\s*(?:\$\s*)?(?:[A-Z_]+=\S*\s+)*(?:\.venv/bin/)?(?:gridlink|pals)\s")
_STOP = re.compile(r"\s(?:&&|;|>|2>|#)\s|\)")  # where a shell line moves on to something else


def _snippets(text: str) -> list[str]:
    """Command lines of fenced blocks (a line that starts with the command, perhaps after a
    prompt or environment assignments) and inline code spans."""
    spans: list[str] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        spans.extend(line for line in block.splitlines() if _LINE_START.match(line))
    prose = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
    spans.extend(re.findall(r"`([^`\n]+)`", prose))
    return spans


def _shown_commands() -> list[tuple[str, str, str]]:
    found = []
    for doc in DOCS:
        for snippet in _snippets(doc.read_text(encoding="utf-8")):
            for match in _COMMAND.finditer(snippet):
                rest = _STOP.split(match.group(2))[0]
                found.append((doc.relative_to(ROOT).as_posix(), match.group(1), rest.strip()))
    return found


def _options(command: Any) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def _is_group(command: Any) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


def _check(program: str, words: str) -> str | None:
    """None when the command line fits the CLI, else what is wrong."""
    command: Any = typer.main.get_command(APPS[program])  # duck-typed: typer vendors click
    parent: Any = None
    tokens = [t.strip("[]{}") for t in words.split()]
    shown_options = [t.split("=")[0] for t in tokens if t.startswith("--")]
    path = [program]
    for token in tokens:
        if not _is_group(command):
            break
        if token in ("...", "COMMAND"):
            return None  # "pals sim ...": the group's --help lists the rest
        names = token.split("|")  # "db upgrade|downgrade|current": alternatives
        if token.startswith("-") or not all(re.fullmatch(r"[a-z][a-z0-9-]*", n) for n in names):
            return f"`{' '.join(path)}` is a group: the command is missing before {token!r}"
        missing = [name for name in names if name not in command.commands]
        if missing:
            return f"`{' '.join(path)}` has no subcommand {', '.join(map(repr, missing))}"
        parent, command = command, command.commands[names[0]]
        path.append(names[0])
    if _is_group(command):
        return None  # a group shown alone (e.g. `pals sim`): its --help lists the rest
    allowed = _options(command) | {"--help"}
    if parent is not None and "|" in words:
        for sibling in parent.commands.values():
            allowed |= _options(sibling)
    unknown = [opt for opt in shown_options if opt not in allowed]
    if unknown:
        return f"`{' '.join(path)}` has no option {', '.join(unknown)}"
    return None


SHOWN = _shown_commands()


def test_the_docs_show_commands() -> None:
    assert len(SHOWN) > 20  # the extraction itself still works


@pytest.mark.parametrize(
    ("doc", "program", "words"), SHOWN, ids=[f"{d}:{p} {w}"[:90] for d, p, w in SHOWN]
)
def test_command_shown_in_docs_exists(doc: str, program: str, words: str) -> None:
    problem = _check(program, words)
    assert problem is None, f"{doc}: `{program} {words}`: {problem}"


@pytest.mark.parametrize(
    ("program", "words", "problem"),
    [
        ("pals", "sim calibrte --json", "has no subcommand 'calibrte'"),
        ("pals", "sim calibrate --jsn", "has no option --jsn"),
        ("gridlink", "db upgrade|sideways", "has no subcommand 'sideways'"),
        ("gridlink", "token --role admin", "the command is missing"),
    ],
)
def test_the_check_catches_drift(program: str, words: str, problem: str) -> None:
    assert problem in (_check(program, words) or "")
