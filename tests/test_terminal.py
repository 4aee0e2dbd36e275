"""What reproduce.sh shows on the terminal (tsblib/terminal.py)."""
import io

from tsblib.terminal import filter_stderr, stage_lines


def test_dvc_chatter_is_dropped_and_progress_bars_pass_through():
    raw = (b"Collecting files and computing hashes in tsblib |###| 3/3\r"
           b"Collecting files and computing hashes in tsblib |####| 4/4\n"
           b"train: 10%|#         | 1/10\rtrain: 20%|##        | 2/10\r"
           b"WARNING: Waiting to acquire lock. If DVC froze, see `hardlink_lock`\n"
           b"[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.\n"
           b"error: checkpoint x is corrupt\n"
           b"partial")
    out = io.BytesIO()
    filter_stderr(io.BytesIO(raw), out, chunk=7)  # small chunks: lines split across reads
    assert out.getvalue() == (b"train: 10%|#         | 1/10\rtrain: 20%|##        | 2/10\r"
                              b"error: checkpoint x is corrupt\npartial")


def test_one_line_per_stage():
    log = ["Running stage 'validate':\n", "> python -m tsblib validate --record\n",
           "params.yaml: profile 'embedded' is valid\n", "Updating lock file 'dvc.lock'\n",
           "Stage 'prepare@lenet3' didn't change, skipping\n",
           "Running stage 'train@lenet3':\n", "[train] done in 61.2 s\n",
           "Running stage 'figure@ablations':\n", "> python -m tsblib figure ablations\n"]
    assert list(stage_lines(iter(log))) == [
        "validate: ran", "prepare@lenet3: reused (unchanged)", "train@lenet3: ran, 61.2 s",
        "figure@ablations: ran"]
