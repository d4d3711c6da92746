# Sourced by the run_*.sh scripts: sets $python to the interpreter that has the toolkit's
# packages ($PYTHON, else .venv/bin/python, else python), or stops with what to do.
python="${PYTHON:-python}"
[ -z "${PYTHON:-}" ] && [ -x "$here/.venv/bin/python" ] && python="$here/.venv/bin/python"
required='import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ("torch", "yaml", "numpy", "open_clip", "soundfile")))'
if ! "$python" -c "$required" 2>/dev/null; then
  echo "error: '$python' lacks the toolkit's packages (torch, PyYAML, open_clip, ...). Run \`make venv\` once" \
       "in $here (the scripts then use .venv), or set PYTHON to an interpreter with requirements.txt installed." >&2
  exit 2
fi
