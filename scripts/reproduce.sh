#!/usr/bin/env bash
# Command 1: set everything up, regenerate all results of the selected profile with DVC, and end
# with the headline claims (`python -m tsblib claims`) and where the figures are.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
if [ ! -d .dvc ]; then dvc init --quiet; fi
# DVC's own messages (which stage runs or is skipped, the lock file, its closing `git add` and
# `dvc push` hints) and the stages' summary lines go to the log; the terminal shows one line per
# stage (ran, with its seconds, or reused), progress bars and errors, without DVC's hashing and
# lock chatter (tsblib/terminal.py). (`dvc repro --quiet` would also hide DVC's error messages.)
log=.dvc/tmp/repro.log
mkdir -p .dvc/tmp
# params.yaml is checked before DVC reads it (an empty or malformed file would otherwise meet
# DVC's own parser first, with its own message)
python -m tsblib validate
echo "dvc repro${*:+ $*}: DVC's messages go to $log" >&2
if ! dvc repro "$@" 2> >(python -m tsblib.terminal stderr >&2) \
     | tee "$log" | python -m tsblib.terminal stdout; then
  echo "dvc repro failed; the end of $log:" >&2
  tail -n 25 "$log" >&2
  exit 1
fi
echo
python -m tsblib claims
# `dvc plots show` without the network: Vega fetched once from the npm registry
[ -f .dvc/tmp/offline_plots.html ] || python -m tsblib offline-plots \
  || echo "note: Vega could not be fetched from the npm registry; dvc plots show will load it" \
          "from its CDN" >&2
echo
# whether the rerun reproduced the committed results, file by file (wall-clock columns aside);
# a difference is reported, not an error of this script
python -m tsblib compare-committed || true
