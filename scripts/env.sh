# Sourced by scripts/*: a Python environment with the locked dependencies (uv.lock: runtime + the dev
# extra), cached outside the repo under ~/.cache/inferfleet/venv/<hash of uv.lock + Python version>,
# and the checkout's operator/ on PYTHONPATH (the project itself is not installed, so one cached venv
# serves every clone).  uv is pinned and bootstrapped once into ~/.cache/inferfleet/uv-<version>/;
# its download cache is ~/.cache/inferfleet/uv-cache unless UV_CACHE_DIR says otherwise.
# Overrides: INFERFLEET_CACHE (instead of ~/.cache/inferfleet), PYTHON (instead of python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${INFERFLEET_CACHE:-$HOME/.cache/inferfleet}"
PY="${PYTHON:-python3}"
UV_VERSION=0.13.9 # also in the Dockerfile (tests/unit/test_packaging.py checks they agree)
UV_HOME="$CACHE/uv-$UV_VERSION"
export UV_CACHE_DIR="${UV_CACHE_DIR:-$CACHE/uv-cache}"
key="$("$PY" -c 'import hashlib,sys,platform; print(hashlib.sha256(open(sys.argv[1],"rb").read()+platform.python_version().encode()).hexdigest()[:16])' "$ROOT/uv.lock")"
VENV="$CACHE/venv/$key"
if [ ! -x "$UV_HOME/bin/uv" ] || [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
  mkdir -p "$CACHE/venv"
  (
    flock 9 # one builder at a time; the others wait, then find it done
    if [ ! -x "$UV_HOME/bin/uv" ]; then
      echo "[inferfleet] installing uv $UV_VERSION into $UV_HOME" >&2
      rm -rf "$UV_HOME" "$UV_HOME.tmp"
      "$PY" -m venv "$UV_HOME.tmp"
      "$UV_HOME.tmp/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" >&2
      rm -rf "$UV_HOME" && mv "$UV_HOME.tmp" "$UV_HOME" # venv scripts use the path they were made at
    fi
    if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
      echo "[inferfleet] creating Python environment $VENV" >&2
      start=$(date +%s)
      rm -rf "$VENV"
      # exactly the lock (--frozen: never re-resolved here; scripts/check fails on a stale lock)
      UV_PROJECT_ENVIRONMENT="$VENV" "$UV_HOME/bin/uv" sync --quiet --frozen --extra dev \
        --no-install-project --no-python-downloads --python "$PY" --project "$ROOT" >&2
      touch "$VENV/.complete"
      echo "[inferfleet] Python environment ready in $(($(date +%s) - start))s" >&2
    fi
  ) 9>"$CACHE/venv/.lock"
fi
export PATH="$VENV/bin:$UV_HOME/bin:$PATH"
export PYTHONPATH="$ROOT/operator${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
cd "$ROOT"
