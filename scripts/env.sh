# Sourced by scripts/*: a Python environment with the project's dependencies, cached outside the
# repo under ~/.cache/inferfleet/venv/<hash of pyproject.toml>, and the checkout's operator/ on
# PYTHONPATH (no editable install, so one cached venv serves every clone).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${INFERFLEET_CACHE:-$HOME/.cache/inferfleet}"
PY="${PYTHON:-python3}"
key="$("$PY" -c 'import hashlib,sys,platform; print(hashlib.sha256(open(sys.argv[1],"rb").read()+platform.python_version().encode()).hexdigest()[:16])' "$ROOT/pyproject.toml")"
VENV="$CACHE/venv/$key"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
  echo "[inferfleet] creating Python environment $VENV" >&2
  start=$(date +%s)
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  # dependencies + dev extras straight from pyproject.toml
  deps="$("$VENV/bin/python" - "$ROOT/pyproject.toml" <<'PYEOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["dev"]))
PYEOF
)"
  # shellcheck disable=SC2086
  echo "$deps" | xargs -d '\n' "$VENV/bin/python" -m pip install -q >&2
  touch "$VENV/.complete"
  echo "[inferfleet] Python environment ready in $(( $(date +%s) - start ))s" >&2
fi
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$ROOT/operator${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
cd "$ROOT"
