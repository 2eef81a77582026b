"""Where the CPU time of a Gnutella summary goes once descriptors come as runs of summary lines
(``p2pkit.capture.summary_runs``, ``DescriptorRecords`` with ``runs``): in one process, best
of five, CPU seconds, on a capture's descriptor segments as the dissector hands them to
``DescriptorRecords.split`` (recorded during one dissection, then replayed):

- ``dissection``: ``Dissection(summary_runs=True).batches()``, no line drawn;
- ``no split``: the same with ``split`` taking each segment whole and making nothing (frames,
  TCP, the stream reader: what is left when the descriptors cost nothing);
- ``split, records``: the loop making one record a descriptor (``-V``, JSON, filters);
- ``split, runs``: the loop making runs (the summary path);
- ``checks``: the fast summary checks alone (pongs, pushes, query hits, long queries), on each
  such descriptor once, and then by payload type;
- ``floor loop``: a loop that only unpacks each header, makes its GUID's hex text and formats
  its tail with one ``%`` (what any per-descriptor line in CPython costs at least);
- ``lines``: ``SummaryLines.text`` of the batches (drawing and joining, not writing).

    cd /tmp && PYTHONPATH=$TREE python $REPO/benchmarks/gnutella_summary_runs.py gnutella.pcap
"""

from __future__ import annotations

import sys
from typing import Any

from cpu_timer import fastest  # (benchmarks/, the directory the script runs in)

from p2pkit.capture.dissect import Dissection
from p2pkit.capture.summary_lines import SummaryLines
from p2pkit.gnutella.descriptor_records import PLANS, DescriptorRecords
from p2pkit.gnutella.descriptors import HEADER_AFTER_GUID


def main(path: str) -> None:
    calls: list[tuple[bytes, int, int]] = []
    split = DescriptorRecords.split

    def spy(self: DescriptorRecords, data: bytes, pos: int, offset: int, frames: list) -> int:
        calls.append((data, pos, offset))
        return split(self, data, pos, offset, frames)

    DescriptorRecords.split = spy  # type: ignore[method-assign]
    batches = list(Dissection(path, summary_runs=True).batches())
    DescriptorRecords.split = split  # type: ignore[method-assign]

    def dissection() -> None:
        for _ in Dissection(path, summary_runs=True).batches():
            pass

    def whole(self: DescriptorRecords, data: bytes, pos: int, offset: int,
              frames: list) -> int:
        return len(data)

    print(f"descriptor segments: {len(calls)}")
    print(f"dissection (runs, no lines): {fastest(dissection):.3f} s")
    DescriptorRecords.split = whole  # type: ignore[method-assign]
    print(f"no split: {fastest(dissection):.3f} s")
    DescriptorRecords.split = split  # type: ignore[method-assign]
    for runs in (False, True):
        records = DescriptorRecords(transport="tcp", src="a:1", dst="b:2")
        records.runs = runs

        def replay(records: DescriptorRecords = records) -> None:
            for data, pos, offset in calls:
                records.split(data, pos, offset, [])

        print(f"split, {'runs' if runs else 'records'}: {fastest(replay):.3f} s")

    header = HEADER_AFTER_GUID.unpack_from
    checked: list[tuple[Any, bytes]] = []
    count = 0
    for data, pos, _ in calls:
        while len(data) - pos >= 23:
            ptype, _ttl, _hops, length = header(data, pos + 16)
            end = pos + 23 + length
            if end > len(data) or ptype not in PLANS:
                break
            _, _, longest, check, _, _ = PLANS[ptype]
            if length > longest and check is not None:
                checked.append((check, data[pos:end]))
            count += 1
            pos = end

    def checks() -> None:
        for check, descriptor in checked:
            check(descriptor)

    print(f"checks: {fastest(checks):.3f} s ({len(checked)} of {count} descriptors)")
    for ptype in sorted({descriptor[16] for _, descriptor in checked}):
        these = [(check, d) for check, d in checked if d[16] == ptype]

        def checks_of(these: list[tuple[Any, bytes]] = these) -> None:
            for check, descriptor in these:
                check(descriptor)

        took = fastest(checks_of)
        print(f"  {PLANS[ptype][0]}: {took:.4f} s, {len(these)} payloads, "
              f"{took / len(these) * 1e6:.2f} us each")

    def floor() -> None:
        tails: list[str] = []
        add = tails.append
        fmt = "name guid=%s ttl=%s hops=%s"
        for data, pos, _ in calls:
            size = len(data)
            while size - pos >= 23:
                ptype, ttl, hops, length = header(data, pos + 16)
                end = pos + 23 + length
                if end > size:
                    break
                add(fmt % (data[pos:pos + 16].hex(), ttl, hops))
                pos = end

    print(f"floor loop: {fastest(floor):.3f} s")

    def lines() -> None:
        drawn = SummaryLines(0.0)
        for batch in batches:
            drawn.text(batch)

    print(f"lines: {fastest(lines):.3f} s")


if __name__ == "__main__":
    main(sys.argv[1])
