"""What a one-line-per-message summary costs at least in Python, next to ``p2pkit dissect``'s
summary run and tshark's one-line-per-frame summary (issue 12; docs/dissect-performance.md,
"The generic per-record path and the summary floor").

    python benchmarks/mode_captures.py /tmp/captures --scale 0.25
    python benchmarks/summary_floor.py /tmp/captures/gnutella.pcap [more captures] [--runs 3]

For each capture, CPU seconds (``time.process_time``) of, medians of ``--runs``:

* ``frames``: :meth:`FrameScanner.scan <p2pkit.capture.frame_scan.FrameScanner.scan>` alone,
  every frame read and nothing done with it;
* ``format+write``: the capture's summary lines, each formatted by one f-string from its
  frame number, time, endpoints and the rest of its text (protocol, message, key=value
  fields, joined beforehand) and written to ``/dev/null``, one ``write`` a line: a floor for
  any Python program that prints a line per message;
* ``write``: the finished lines only written, one call each;
* ``SummaryLines``: :class:`~p2pkit.capture.summary_lines.SummaryLines` drawing the same lines
  from the records, a batch (the records released after one frame) at a time, written;
* the whole ``p2pkit dissect`` process and the whole ``tshark -r F -d tcp.port==6346,gnutella``
  process (``/usr/bin/time``, user + system, start-up included), lines each prints.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from p2pkit.capture.dissect import Dissection
from p2pkit.capture.frame_scan import FrameScanner
from p2pkit.capture.summary_lines import SummaryLines

ROOT = Path(__file__).resolve().parent.parent


def _cpu(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """(user + system CPU seconds, lines printed) of one process."""
    with tempfile.NamedTemporaryFile("r") as report, tempfile.TemporaryFile("w+b") as out:
        subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%U %S", *command], env=env,
                       cwd=tempfile.gettempdir(), stdout=out, stderr=subprocess.DEVNULL,
                       check=False)
        user, system = report.read().split()[-2:]
        out.seek(0)
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: out.read(1 << 20), b""))
    return float(user) + float(system), lines


def measure(path: Path, runs: int) -> dict[str, float | int]:
    dissection = Dissection(path)
    batches = list(dissection.batches())
    start = dissection.first_time or 0.0
    lines = SummaryLines(start)
    text = [lines.text(batch) for batch in batches]  # (decodes what the lines read, once)
    finished = "".join(text).splitlines(keepends=True)
    # each line's values: frame, time, endpoints, and the rest of the line as it is printed
    # (protocol, message, key=value text: joined beforehand, so the floor is a lower bound)
    rows = []
    for record, line in zip((r for batch in batches for r in batch), finished, strict=True):
        head = f"{record.frame:5d} {record.time - start:10.6f} {record.src} → {record.dst} "
        rows.append((record.frame, record.time - start, record.src, record.dst,
                     line[len(head):]))
    sink = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    figures: dict[str, list[float]] = {k: [] for k in
                                       ("frames", "format+write", "write", "SummaryLines")}
    for _ in range(runs):
        t = time.process_time()
        with FrameScanner(path) as scanner:
            for _frame in scanner.scan():
                pass
        figures["frames"].append(time.process_time() - t)
        t = time.process_time()
        write = sink.write
        for frame, at, src, dst, rest in rows:
            write(f"{frame:5d} {at:10.6f} {src} → {dst} {rest}")
        figures["format+write"].append(time.process_time() - t)
        t = time.process_time()
        for line in finished:
            write(line)
        figures["write"].append(time.process_time() - t)
        t = time.process_time()
        lines = SummaryLines(start)
        for batch in batches:
            write(lines.text(batch))
        figures["SummaryLines"].append(time.process_time() - t)
    sink.close()
    result: dict[str, float | int] = {k: statistics.median(v) for k, v in figures.items()}
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ours = [_cpu([sys.executable, "-m", "p2pkit", "dissect", str(path)], env)
            for _ in range(runs)]
    theirs = [_cpu(["tshark", "-r", str(path), "-d", "tcp.port==6346,gnutella"])
              for _ in range(runs)]
    result["p2pkit dissect"] = statistics.median(c for c, _ in ours)
    result["tshark"] = statistics.median(c for c, _ in theirs)
    result["p2pkit lines"], result["tshark lines"] = ours[0][1], theirs[0][1]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("captures", type=Path, nargs="+")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "p2pkit")], check=True)
    print("| Capture | lines (p2pkit / tshark) | frames only | format+write | write only "
          "| SummaryLines | p2pkit dissect | tshark |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for path in args.captures:
        r = measure(path, args.runs)
        print(f"| {path.stem} | {r['p2pkit lines']:,} / {r['tshark lines']:,} "
              f"| {r['frames']:.2f} | {r['format+write']:.2f} | {r['write']:.2f} "
              f"| {r['SummaryLines']:.2f} | {r['p2pkit dissect']:.2f} | {r['tshark']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
