#!/usr/bin/env bash
# Training-free baseline. Run from the repository root; extra arguments go to eval_zero_shot.py:
#   bash run_baseline_v0.sh --strategy v0 eval.split=val
#   bash run_baseline_v0.sh --config configs/my_experiment.yaml
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"
[ -z "${PYTHON:-}" ] && [ -x "$here/.venv/bin/python" ] && python="$here/.venv/bin/python"
required='import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ("torch", "yaml", "numpy", "open_clip", "soundfile")))'
if ! "$python" -c "$required" 2>/dev/null; then
  echo "error: '$python' lacks the toolkit's packages (torch, PyYAML, open_clip, ...). Run \`make venv\` once" \
       "in $here (the scripts then use .venv), or set PYTHON to an interpreter with requirements.txt installed." >&2
  exit 2
fi
exec "$python" "$here/eval_zero_shot.py" --config "$here/configs/v0_training_free.yaml" "$@"
