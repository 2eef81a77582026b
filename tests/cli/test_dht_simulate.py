"""``p2pkit dht simulate``: sizes, cores, refusals before allocating, JSON."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from p2pkit.cli import cli
from p2pkit.cli.dht_simulate import available_memory
from p2pkit.dht.simulator import estimate_memory


def _run(*args: str):
    return CliRunner().invoke(cli, ["dht", "simulate", *args])


@pytest.mark.parametrize(("args", "reason"), [
    (["--nodes", "-5"], "--nodes: a network has at least 2 nodes, not -5"),
    (["--lookups", "0"], "--lookups: at least 1 lookup"),
    (["--churn", "1"], "--churn: a fraction in [0, 1), not 1"),
    (["--churn", "-0.1"], "--churn: a fraction in [0, 1)"),
    (["--loss", "1.5"], "--loss: a fraction in [0, 1)"),
    (["--sessions", "0.5"], "--sessions: SHAPE,MEDIAN"),
    (["--sessions", "0,3600"], "--sessions: SHAPE,MEDIAN"),
    (["--window", "0", "--sessions", "0.5,60"], "--window: a positive number"),
    (["--core", "array", "--join", "protocol"], "--join: protocol joins run on the node core"),
    (["--deployment", "ipfs", "--core", "node"], "--deployment: ipfs runs on the array core"),
    (["--nodes", "2", "--churn", "0.5"], "--churn: the churn leaves 1 of 2 nodes"),
    (["--nodes", "3", "--sessions", "0.1,1", "--window", "100000"], "--sessions: the churn leaves"),
    (["--nodes", "100000000"], "100,000,000 nodes on the array core need about"),
    (["--nodes", "100000", "--core", "node", "--memory-limit", "2"],
     "more than the 2.0 GiB available (try --core array)"),
])
def test_bad_parameters_get_one_line(args, reason):
    result = _run(*args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0] and "Traceback" not in result.output


def test_the_refusal_comes_before_allocating():
    # a billion nodes would take minutes and terabytes; refused at once
    result = _run("--nodes", "1000000000", "--core", "array")
    assert result.exit_code == 2 and "need about" in result.output
    assert estimate_memory(10**9, "array") > available_memory()


def test_estimates_grow_with_the_size_and_the_node_core_costs_more():
    assert estimate_memory(10**6, "array") < 3 * 2**30  # a million fits a 6 GiB budget
    assert estimate_memory(10**5, "node") > 10 * (estimate_memory(10**5, "array") - 4e8)
    assert estimate_memory(2 * 10**5, "array") > estimate_memory(10**5, "array")


def test_array_core_with_session_churn_as_json():
    result = _run("--nodes", "4000", "--lookups", "30", "--core", "array", "--sessions",
                  "0.5,600", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["core"] == "array" and report["stable"]["success_rate"] == 1.0
    assert 0 < report["churn"] < 0.5 and report["churn_model"].startswith("weibull shape 0.5")
    assert report["churned"]["nodes"] == round(4000 * (1 - report["churn"]))
    assert sum(report["stable"]["hop_histogram"].values()) == 30


def test_auto_takes_the_node_core_for_small_networks():
    result = _run("--nodes", "300", "--lookups", "10")
    assert result.exit_code == 0, result.output
    assert "(node core, mainline, populate)" in result.output and "success 100.0%" in result.output


def test_ipfs_parameters_on_the_array_core():
    result = _run("--nodes", "3000", "--lookups", "20", "--deployment", "ipfs", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["core"], report["deployment"]) == ("array", "ipfs")
    # k = 20: a lookup asks at least the 20 closest
    assert report["stable"]["success_rate"] == 1.0 and report["stable"]["mean_queries"] >= 20
