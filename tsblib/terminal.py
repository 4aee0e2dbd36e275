"""What `scripts/reproduce.sh` shows on the terminal while `dvc repro` runs.

DVC's own messages go to the log; on the terminal there is one line per stage (its name, and
its seconds when it ran, or that DVC reused its outputs), the stages' progress bars and errors.
Two filters, each reading a stream and writing what the terminal should show:

    dvc repro 2> >(python -m tsblib.terminal stderr >&2) | tee LOG | python -m tsblib.terminal stdout

- `stderr`: passes everything through (progress bars redraw in place) except DVC's hashing
  progress ("Collecting files and computing hashes ..."), lock chatter ("Waiting to acquire
  lock ...") and a stopped kernel's "KeyboardInterrupt caught in kernel", which go nowhere
  (they are in no result).
- `stdout` (DVC's messages and the stages' summary lines, already in the log): prints one line
  per stage.
"""
from __future__ import annotations

import re
import sys
from typing import BinaryIO, Iterator, TextIO

CHATTER = (b"Collecting files and computing hashes", b"Waiting to acquire lock",
           b"If DVC froze", b"KeyboardInterrupt caught in kernel")
"""Fragments of stderr lines that the terminal does not show: DVC's hashing and lock chatter,
and the line an idle notebook kernel logs when papermill stops it after a figure."""


def _segments(data: bytes) -> Iterator[bytes]:
    """`data` cut after every newline or carriage return (each piece keeps its separator)."""
    start = 0
    for match in re.finditer(rb"[\r\n]", data):
        yield data[start:match.end()]
        start = match.end()
    if start < len(data):
        yield data[start:]


def filter_stderr(source: BinaryIO, sink: BinaryIO, chunk: int = 4096) -> None:
    """Copy `source` to `sink` as it comes, leaving out every line (or in-place redraw) that
    holds one of `CHATTER`."""
    pending = b""
    while True:
        data = source.read1(chunk) if hasattr(source, "read1") else source.read(chunk)
        if not data:
            break
        pending += data
        pieces = list(_segments(pending))
        pending = pieces.pop() if pieces and not pieces[-1].endswith((b"\r", b"\n")) else b""
        out = b"".join(p for p in pieces if not any(c in p for c in CHATTER))
        if out:
            sink.write(out)
            sink.flush()
    if pending and not any(c in pending for c in CHATTER):
        sink.write(pending)
        sink.flush()


RUNNING = re.compile(r"^Running stage '([^']+)':")
SKIPPED = re.compile(r"^Stage '([^']+)' didn't change, skipping")
DONE = re.compile(r"^\[([\w-]+)\] done in ([\d.]+) s")


def stage_lines(lines: Iterator[str]) -> Iterator[str]:
    """One line per stage from DVC's stdout, as soon as it is known: 'NAME: reused
    (unchanged)', 'NAME: ran, N s' (the seconds the stage reported) or, for a stage that reports
    none, 'NAME: ran' when DVC moves on to the next stage."""
    current = None
    for line in lines:
        if m := SKIPPED.match(line):  # the stage before it has finished
            if current is not None:
                yield f"{current}: ran"
                current = None
            yield f"{m.group(1)}: reused (unchanged)"
        elif m := RUNNING.match(line):
            if current is not None:
                yield f"{current}: ran"
            current = m.group(1)
        elif (m := DONE.match(line)) and current is not None:
            yield f"{current}: ran, {m.group(2)} s"
            current = None
    if current is not None:
        yield f"{current}: ran"


def _print_stages(source: TextIO, sink: TextIO) -> None:
    for line in stage_lines(iter(source.readline, "")):
        print(line, file=sink, flush=True)


def main(argv: list[str]) -> int:
    """`python -m tsblib.terminal stderr|stdout`: filter standard input to standard output."""
    if argv == ["stderr"]:
        filter_stderr(sys.stdin.buffer, sys.stdout.buffer)
    elif argv == ["stdout"]:
        _print_stages(sys.stdin, sys.stdout)
    else:
        print("usage: python -m tsblib.terminal stderr|stdout", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
