"""Multi-target runs: ``--target good=… --target mutant=…`` gives one report whose matrix
shows where the targets differ; exit 0 only when no MUST case fails on any target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from p2pkit.conformance.reporters import json_report
from tests.conformance.matrix_helpers import MUTANT_FAILS, SECTIONS, cases, two_nodes

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "p2pkit", "conformance", "run", "dht", *args],
                          capture_output=True, text=True, timeout=180, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def nodes():
    with two_nodes() as addresses:
        yield addresses


def _selection() -> list[str]:
    return [arg for section in SECTIONS for arg in ("--cases", section)]


def test_matrix_shows_the_mutant(nodes, tmp_path: Path) -> None:
    good, mutant = nodes
    out = _cli("--target", f"good={good}", "--target", f"mutant={mutant}", *_selection(),
               "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html"),
               "--junit", str(tmp_path / "r.xml"))
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert json_report.validate(doc) == []
    assert doc["schema"] == json_report.MATRIX_SCHEMA and doc["exit_status"] == 1
    assert [t["label"] for t in doc["targets"]] == ["good", "mutant"]
    assert [t["target"] for t in doc["targets"]] == [good, mutant]
    rows = {row["id"]: row["verdicts"] for row in doc["matrix"]}
    assert set(rows) == {c.id for c in cases()}
    differing = {case for case, v in rows.items() if v["good"] != v["mutant"]}
    assert differing == MUTANT_FAILS and len(differing) == 6
    assert all(rows[c] == {"good": "pass", "mutant": "fail"} for c in differing)
    assert [run["summary"]["exit_status"] for run in doc["runs"]] == [0, 1]
    # the console: the matrix per section, then the six cases where the targets differ
    assert "conformance matrix: 2 targets" in out.stdout
    assert "6 case(s) where the targets differ" in out.stdout
    for case in differing:
        assert f"{case} (MUST): good pass, mutant fail" in out.stdout
    assert "a MUST case fails on: mutant" in out.stdout
    page = (tmp_path / "r.html").read_text()
    assert 'class="matrix"' in page and page.count('class="differs"') == 6
    for case in rows:
        assert f'id="good/{case}"' in page and f'id="mutant/{case}"' in page
    junit = (tmp_path / "r.xml").read_text()
    assert 'name="mutant: dht/bep5/krpc"' in junit and 'name="good: dht/bep5/krpc"' in junit


def test_exit_zero_when_no_target_fails(nodes) -> None:
    good, _ = nodes
    out = _cli("--target", f"a={good}", "--target", f"b={good}", "--cases", "dht/bep5/ping")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    assert "no MUST case fails on any target" in out.stdout
    assert "where the targets differ" not in out.stdout


def test_the_same_label_twice_is_one_line(nodes) -> None:
    good, mutant = nodes
    out = _cli("--target", good, "--target", good, "--cases", "dht/bep5/ping")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "label" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_unreachable_target_names_its_label(nodes) -> None:
    good, _ = nodes
    out = _cli("--target", f"good={good}", "--target", "gone=127.0.0.1:9",
               "--cases", "dht/bep5/ping")
    assert out.returncode == 2
    assert "--target gone" in out.stderr and "Traceback" not in out.stderr
