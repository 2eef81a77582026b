"""``p2pkit dissect FILE`` without click (:mod:`p2pkit.cli.dissect_argv`): the parameters
click gives for the same arguments, the same output and errors, and a summary run of each
kind of committed capture importing no click nor what it does not meet."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.cli import main
from p2pkit.cli.dissect_argv import PLAIN_FLAGS, plain_dissect
from p2pkit.cli.dissect_command import dissect_command
from tests.pcap_payloads import CAPTURES

TOKENS = [*PLAIN_FLAGS, "-", "x.pcap", "y.pcap", "", "--help", "-h", "-c", "3", "--format",
          "jsonl", "--js", "--tre", "-Vh", "--", "--protocol", "gnutella", "--decode-as",
          "tcp.port==6346,gnutella", "--keylog", "--filter", "dissect", "-V=1", "--json=1"]


def _click_params(args: list[str]) -> dict:
    with dissect_command.make_context("dissect", list(args)) as ctx:
        return dict(ctx.params)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=6))
def test_plain_arguments_are_the_ones_click_reads(args):
    params = plain_dissect(["dissect", *args])
    if params is not None:  # (None: click parses them, whatever they are)
        assert params == _click_params(args)


@pytest.mark.parametrize("args", [
    ["x.pcap"], ["-"], ["x.pcap", "-V"], ["--json", "x.pcap", "--stats", "--no-undecoded"],
    ["--tree", "x.pcap", "-V", "--json"], [""]])
def test_plain_ones(args):
    assert plain_dissect(["dissect", *args]) == _click_params(args)


@pytest.mark.parametrize("args", [
    [], ["dissect"], ["bt", "x"], ["dissect", "a", "b"], ["dissect", "x", "--help"],
    ["dissect", "x", "-c", "3"], ["dissect", "--", "x"], ["dissect", "x", "--js"],
    ["dissect", "x", "-Vh"], ["dissect", "x", "--json=1"]])
def test_anything_else_goes_to_click(args):
    assert plain_dissect(args) is None


def test_same_output_and_errors_as_through_click(capsys, tmp_path):
    from click.testing import CliRunner

    from p2pkit.cli import cli

    path = str(CAPTURES / "ndpi-gnutella.pcap")
    directory = str(tmp_path)
    text = tmp_path / "text.pcap"
    text.write_text("not a capture\n")
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((CAPTURES / "ndpi-gnutella.pcap").read_bytes()[:5000])
    for args in (["dissect", path], ["dissect", path, "-V"], ["dissect", path, "--json"],
                 ["dissect", path, "--stats"], ["dissect", str(text)],
                 ["dissect", str(cut)], ["dissect", directory],
                 ["dissect", str(tmp_path / "none.pcap")]):
        assert plain_dissect(args) is not None
        status = main(args)
        out, err = capsys.readouterr()
        through_click = CliRunner().invoke(cli, args)
        assert (status, out, err) == (through_click.exit_code, through_click.stdout,
                                      through_click.stderr), args
        assert status in (0, 1, 2)


#: Per committed capture: modules a summary run needs (so the run did happen) and modules it
#: must not import (another mode's, another protocol's, click).
NOT_FOR_ANY = ["click", "rich", "p2pkit.cli.errors", "p2pkit.cli.dissect_command",
               "p2pkit.capture.filters"]
KINDS = {
    "bt-06-p2pkit-leech-libtorrent.pcap": (
        ["p2pkit.bittorrent.wire.messages"],
        ["p2pkit.gnutella.descriptors", "p2pkit.gnutella.stream", "p2pkit.dht.dissect",
         "p2pkit.dht.krpc", "p2pkit.kad2.dissect", "p2pkit.ipfs.noise"]),
    "dht-02-bep44-put-get.pcap": (
        ["p2pkit.dht.dissect"],
        ["p2pkit.gnutella.stream", "p2pkit.gnutella.deferred", "p2pkit.bittorrent.wire.messages",
         "p2pkit.kad2.dissect", "p2pkit.rpcudp.dissect", "p2pkit.ipfs.multistream"]),
    "gnutella-02-p2pkit-servents.pcap": (
        ["p2pkit.gnutella.descriptor_records"],
        ["p2pkit.dht.dissect", "p2pkit.dht.krpc", "p2pkit.bittorrent.tracker.dissect",
         "p2pkit.kad2.dissect", "p2pkit.ipfs.noise"]),
    "tracker-01-opentracker-libtorrent-aria2.pcap": (
        ["p2pkit.bittorrent.tracker.dissect"],
        ["p2pkit.gnutella.stream", "p2pkit.gnutella.descriptors", "p2pkit.kad2.dissect",
         "p2pkit.ipfs.multistream"]),
}


def test_a_summary_run_imports_only_what_it_meets():
    script = ("import sys\nfrom p2pkit.cli import main\nstatus = main(['dissect', sys.argv[1]])\n"
              "sys.stdout.flush()\nprint(status, ' '.join(sorted(sys.modules)), file=sys.stderr)")
    for name, (needed, unneeded) in KINDS.items():
        done = subprocess.run([sys.executable, "-c", script, str(CAPTURES / name)],
                              capture_output=True, text=True, timeout=120, check=True)
        status, modules = done.stderr.split(" ", 1)
        modules = set(modules.split())
        assert status == "0" and done.stdout.count("\n") > 10, name
        assert set(needed) <= modules, name
        assert modules.isdisjoint(NOT_FOR_ANY + unneeded), (name, modules & set(unneeded))


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, EOFError])
def test_an_interrupt_is_reported_as_through_click(capsys, monkeypatch, interrupt):
    from p2pkit.cli import cli
    from p2pkit.cli import dissect as work
    from p2pkit.cli import dissect_command as declared
    from p2pkit.cli.errors import run

    def interrupted(**params):
        raise interrupt

    monkeypatch.setattr(work, "dissect", interrupted)
    monkeypatch.setattr(declared, "dissect", interrupted)
    args = ["dissect", "x.pcap"]
    assert plain_dissect(args) is not None
    plain = (main(args), *capsys.readouterr())
    through_click = (run(cli, args, prog_name="p2pkit"), *capsys.readouterr())
    assert plain == through_click == (130, "", "\np2pkit: interrupted\n")
