#!/usr/bin/env bash
# Create (or reuse) .venv with a Python >= 3.12 and the project installed with its dev extra.
# Idempotent: the install is skipped when pyproject.toml has not changed since the last one.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
MIN_MINOR=12

is_ok() {  # is_ok CMD -> true when CMD runs and is Python >= 3.MIN_MINOR
    "$1" -c "import sys; sys.exit(0 if sys.version_info >= (3, $MIN_MINOR) else 1)" >/dev/null 2>&1
}

find_python() {
    local cand
    if [ -n "${PYTHON:-}" ]; then
        if is_ok "$PYTHON"; then echo "$PYTHON"; return 0; fi
        echo "bootstrap: PYTHON=$PYTHON is not a Python >= 3.$MIN_MINOR" >&2; return 1
    fi
    for cand in python3.14 python3.13 python3.12 python3; do
        if command -v "$cand" >/dev/null 2>&1 && is_ok "$cand"; then command -v "$cand"; return 0; fi
    done
    # pyenv keeps interpreters that its shims only expose when selected: look at them directly.
    local root
    root=$( (command -v pyenv >/dev/null 2>&1 && pyenv root) || echo "${PYENV_ROOT:-$HOME/.pyenv}")
    for cand in $(ls -d "$root"/versions/3.* 2>/dev/null | sort -rV); do
        for exe in "$cand"/bin/python3; do
            if [ -x "$exe" ] && is_ok "$exe"; then echo "$exe"; return 0; fi
        done
    done
    for cand in /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9] /opt/homebrew/bin/python3.1[2-9]; do
        if [ -x "$cand" ] && is_ok "$cand"; then echo "$cand"; return 0; fi
    done
    cat >&2 <<MSG
bootstrap: no Python >= 3.$MIN_MINOR found.
  looked for: \$PYTHON, python3.14, python3.13, python3.12 and python3 on PATH,
              pyenv versions under $root/versions, /usr/local/bin, /usr/bin, /opt/homebrew/bin.
  install one (e.g. 'pyenv install 3.12' or your OS package python3.12) or set PYTHON=/path/to/python3.12
MSG
    return 1
}

if [ -x "$VENV/bin/python" ] && ! is_ok "$VENV/bin/python"; then
    echo "bootstrap: $VENV holds an older Python; recreating it" >&2
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    PY=$(find_python)
    echo "bootstrap: creating $VENV with $PY ($("$PY" --version 2>&1))" >&2
    "$PY" -m venv "$VENV"
fi

stamp="$VENV/.installed-$( (cat pyproject.toml; "$VENV/bin/python" --version) | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing the project and its dev tools into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]' >&2
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
