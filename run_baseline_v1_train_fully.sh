#!/usr/bin/env bash
# Fine-tuning baseline. Run from the repository root; extra arguments go to train.py:
#   bash run_baseline_v1_train_fully.sh --resume
#   bash run_baseline_v1_train_fully.sh temporal.num_layers=2 train.epochs=10
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
exec "$python" "$here/train.py" --config "$here/configs/v1_fine_tuning.yaml" "$@"
