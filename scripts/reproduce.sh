#!/usr/bin/env bash
# Command 1: set everything up, regenerate all results of the selected profile with DVC, and end
# with the headline claims (`python -m tsblib claims`) and where the figures are.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
if [ ! -d .dvc ]; then dvc init --quiet; fi
# DVC's own messages (which stage runs or is skipped, the lock file, its closing `git add` and
# `dvc push` hints) and the stages' summary lines go to the log; progress bars, warnings and
# errors stay on the terminal. (`dvc repro --quiet` would also hide DVC's error messages.)
log=.dvc/tmp/repro.log
mkdir -p .dvc/tmp
echo "dvc repro${*:+ $*}: DVC's messages go to $log" >&2
if ! dvc repro "$@" > "$log"; then
  echo "dvc repro failed; the end of $log:" >&2
  tail -n 25 "$log" >&2
  exit 1
fi
echo
python -m tsblib claims
