"""Why a well-behaved download from the seeder fails under the soak's attack (issue 13; results
in docs/guide/hostile-peers.md): ``bt seed -v`` under the attacker process of
``benchmarks/hostile_soak.py``, beside well-behaved downloads one after the other, each logged
(``RUN n start``/``end``) with the leecher's own INFO log, so that a slow or failed run can be
matched with the seeder's log (``connected from``, ``evicting``). Inside ``unshare -n`` only::

    unshare -n sh -c 'ip link set lo up && exec timeout 200 /work/venv/bin/python \\
        benchmarks/seeder_eviction_probe.py --seconds 90 --logs /tmp/seed-probe'
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import hostile_soak as hs  # noqa: E402


async def run(seconds: float, logs: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        meta = hs.prepare(work)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        seeder = subprocess.Popen([sys.executable, "-m", "p2pkit",
                                   *hs.server_argv("bt seed", work), "-v"], cwd=work, env=env,
                                  stdout=open(logs / "seeder.log", "wb"),
                                  stderr=subprocess.STDOUT)
        await asyncio.sleep(3)
        attacker = subprocess.Popen([sys.executable, hs.__file__, "--attacker", "bt seed",
                                     "--work", str(work), "--per-kind", "25"], env=env,
                                    stdout=subprocess.PIPE)
        started, n = time.monotonic(), 0
        try:
            while time.monotonic() - started < seconds:
                n += 1
                begin = time.monotonic()
                logging.info("RUN %d start", n)
                try:
                    ok = await asyncio.wait_for(hs.good_bt(work, meta, n), hs.GOOD_TIMEOUT)
                except Exception as e:  # noqa: BLE001 - a failed run is what we look for
                    ok = repr(e)
                logging.info("RUN %d end ok=%s took=%.2f", n, ok, time.monotonic() - begin)
                await asyncio.sleep(0.05)
        finally:
            attacker.send_signal(signal.SIGTERM)
            attacker.communicate(timeout=30)
            seeder.send_signal(signal.SIGTERM)
            seeder.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--logs", type=Path, default=Path("."))
    args = parser.parse_args()
    if not hs.only_loopback():
        sys.exit("seeder_eviction_probe: run me inside `unshare -n` (only lo may exist)")
    args.logs.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=args.logs / "leecher.log", level=logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run(args.seconds, args.logs))


if __name__ == "__main__":
    main()
