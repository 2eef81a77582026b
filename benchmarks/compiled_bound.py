"""How far compiled code would take ``p2pkit dissect`` (issue 12: the Gnutella and mixed rows
still slower than tshark): Cython in pure-Python mode on an unchanged copy of the tree,
measured against the bytecode tree and tshark. A measurement, not a product change.

    pip install cython    # not a p2pkit dependency; gcc and the Python headers are needed
    python benchmarks/mode_captures.py /tmp/captures --scale 0.25
    python benchmarks/compiled_bound.py /tmp/captures [--runs 3] [--only gnutella mixed]
        [--modes summary tree] [--typed] [--generated] [--keep DIR | --reuse DIR]

The script copies ``p2pkit/`` (and ``tests/data/captures``, for
``benchmarks/compare_dissect_outputs.sh``) into a temporary directory, compiles the modules of
the dissection path in place with ``cythonize -i`` (``annotation_typing=False``: annotations
stay hints, so the compiled modules accept what the Python ones accept; without it a
``list`` annotation refuses construct's ``ListContainer``), byte-compiles both trees, then for
each capture and mode runs, one after the other: p2pkit from this tree (bytecode), p2pkit
from the compiled copy, tshark; CPU seconds (user + system) of whole processes by
``/usr/bin/time``, median of ``--runs``, printed as a Markdown table.

``--typed`` also gives a few C types (``@cython.locals``, pure-Python mode) to the locals of the
hottest byte-walking loops (:data:`TYPED`), written into the copy only. ``--generated`` also
writes every source the run generates with ``exec`` (the -V tree shapes, JSON readers,
FixedLayout unpackers: they stay bytecode in a compiled tree) into a module at build time,
compiles it, and has the copy's ``exec`` of that source take the compiled functions instead
(:func:`generated_modules`: a measurement device, recorded from one warm-up run on the
captures measured). ``--keep DIR`` builds into DIR and leaves it (to run
``compare_dissect_outputs.sh`` with it as "after"); ``--reuse DIR`` measures a kept build.
Installs nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ("peerwire", "dht", "gnutella", "mixed")
MODES = {"summary": ([], []), "tree": (["-V"], ["-V"]), "json": (["--json"], ["-T", "json"])}

# The modules with own time in a cProfile of the Gnutella and mixed captures, summary and -V
# (python -m cProfile -m p2pkit dissect F [-V]), hottest first.
HOT = (
    "gnutella/ggep", "gnutella/descriptor_json", "gnutella/descriptor_records",
    "capture/render", "capture/lazy_record", "capture/dissect", "cli/dissect",
    "capture/tree_shapes", "gnutella/deferred", "gnutella/descriptor_fast_path",
    "gnutella/descriptors", "capture/record", "capture/summary_runs", "gnutella/stream",
    "dht/dissect", "capture/summary_lines", "capture/frame_scan", "schema", "gnutella/dissect",
    "bittorrent/dissect", "capture/json_shapes", "capture/flows", "gnutella/fields",
    "capture/datagrams", "capture/stream_buffer",
)

# --typed: C types for the locals of the hottest loops (module, function, {local: C type}).
# Only integers that index or bound the bytes, and ``data`` where every caller passes bytes.
TYPED = (
    ("gnutella/ggep", "_fast_ggep",
     {"pos": "Py_ssize_t", "end": "Py_ssize_t", "flags": "int", "id_length": "Py_ssize_t",
      "id_end": "Py_ssize_t", "length": "Py_ssize_t", "count": "Py_ssize_t",
      "value_end": "Py_ssize_t", "data": "bytes"}),
    ("gnutella/ggep", "_fast_extension_block",
     {"pos": "Py_ssize_t", "end": "Py_ssize_t", "stop": "Py_ssize_t", "zero": "Py_ssize_t"}),
    ("gnutella/descriptor_records", "_runs",
     {"pos": "Py_ssize_t", "size": "Py_ssize_t", "whole": "Py_ssize_t", "end": "Py_ssize_t",
      "length": "Py_ssize_t", "limit": "Py_ssize_t", "longest": "Py_ssize_t"}),
)

# --generated: in the copy, each ``exec(compile(source, name, "exec"), env)`` of p2pkit
# becomes ``__import__("p2pkit")._generated_exec((source, name, "exec"), env)``, which HOOK
# (put at the end of the copy's p2pkit/__init__.py) defines. Recording (P2PKIT_RECORD_GENERATED=DIR),
# it runs the source and writes it to DIR as a function ``make_<digest>(env)`` that binds the
# names of ``env`` as locals, runs the source in its body and returns the names it defined;
# measuring, it takes those names from the compiled module p2pkit/_generated (the source
# runs as bytecode if no module was recorded for it).
EXEC = 'exec(compile('
LOOSEN = '            draw.__code__ = env["draw"].__code__\n'
LOOSEN_COMPILED = ('            if type(draw).__name__ == "function":  # not compiled\n'
                   '                draw.__code__ = env["draw"].__code__\n')
HOOK = r'''
def _generated_exec(args, env):
    import builtins, hashlib, importlib, os, textwrap
    source, name, mode = args
    digest = hashlib.sha1(source.encode()).hexdigest()[:20]
    record = os.environ.get("P2PKIT_RECORD_GENERATED")
    if not record:
        try:
            make = getattr(importlib.import_module("p2pkit._generated"), "make_" + digest, None)
        except ImportError:
            make = None
        if make is not None:
            env.update(make(env))
            return
    before = [k for k in env if k != "__builtins__"]
    builtins.exec(builtins.compile(source, name, mode), env)
    if record:
        import ast
        tree = ast.parse(source)
        stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                  and not isinstance(n.ctx, ast.Load)}
        stored |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        stored |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
                   for a in (*n.posonlyargs, *n.args, *n.kwonlyargs, n.vararg, n.kwarg) if a}

        class Late(ast.NodeTransformer):  # names env gets after the exec: looked up at call
            def visit_Name(self, n):
                if isinstance(n.ctx, ast.Load) and n.id not in before and n.id not in stored \
                        and not hasattr(builtins, n.id):
                    return ast.copy_location(ast.Subscript(ast.Name("_ENV_", ast.Load()),
                                                           ast.Constant(n.id), n.ctx), n)
                return n
        body = textwrap.indent(ast.unparse(ast.fix_missing_locations(Late().visit(tree))),
                               "    ")
        top = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)} | {
            n.id for s in tree.body if isinstance(s, ast.Assign) for n in ast.walk(s)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        defined = [k for k in env if k in top]
        bind = "".join(f"    {k} = _ENV_[{k!r}]\n" for k in before)
        made = ", ".join(f"{k!r}: {k}" for k in defined)
        with open(os.path.join(record, f"g_{digest}.py"), "w") as out:
            out.write(f"# {name}\ndef make_{digest}(_ENV_):\n{bind}{body}\n"
                      f"    return {{{made}}}\n")
'''


def timed(command: list[str], env: dict[str, str], cwd: str) -> float:
    """User + system CPU seconds of one process, its output to /dev/null."""
    with tempfile.NamedTemporaryFile("r") as report:
        subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%U %S", *command],
                       env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
        user, system = report.read().split()[-2:]
    return float(user) + float(system)


def typed_source(text: str, function: str, types: dict[str, str]) -> str:
    """``text`` with ``@cython.locals(...)`` before ``def function(`` and ``import cython``."""
    declared = ", ".join(f"{name}=cython.{ctype}" for name, ctype in types.items())
    pattern = re.compile(rf"^(\s*)def {function}\(", re.MULTILINE)
    match = pattern.search(text)
    if match is None:
        raise SystemExit(f"compiled_bound: no function {function} to type")
    text = f"{text[:match.start()]}{match.group(1)}@cython.locals({declared})\n{text[match.start():]}"
    future = "from __future__ import annotations\n"
    return text.replace(future, future + "import cython\n", 1) if future in text else (
        "import cython\n" + text)


def cythonize(build: Path, files: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "Cython.Build.Cythonize", "-i", "-3", "-j", "2", "-q",
                    "-X", "annotation_typing=False", *files], cwd=build, check=True,
                   stdout=subprocess.DEVNULL)


def generated_modules(build: Path, captures: list[Path], modes: list[str]) -> int:
    """Record the sources generated by the copy on ``captures`` in every mode of ``modes``,
    write them as one module, ``p2pkit/_generated.py``, and compile it; returns how many."""
    with tempfile.TemporaryDirectory(prefix="compiled-bound-gen-") as record:
        env = dict(os.environ, PYTHONPATH=str(build), P2PKIT_RECORD_GENERATED=record)
        for capture in captures:
            for mode in modes:
                subprocess.run([sys.executable, "-m", "p2pkit", "dissect", str(capture),
                                *MODES[mode][0]], env=env, cwd=tempfile.gettempdir(),
                               stdout=subprocess.DEVNULL, check=False)
        sources = sorted(Path(record).glob("g_*.py"))
        (build / "p2pkit" / "_generated.py").write_text(
            "".join(source.read_text() + "\n\n" for source in sources))
    cythonize(build, ["p2pkit/_generated.py"])
    return len(sources)


def build_copy(build: Path, typed: bool, generated: bool) -> None:
    shutil.copytree(ROOT / "p2pkit", build / "p2pkit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"))
    shutil.copytree(ROOT / "tests" / "data" / "captures", build / "tests" / "data" / "captures")
    if typed:
        for module, function, types in TYPED:
            path = build / "p2pkit" / f"{module}.py"
            path.write_text(typed_source(path.read_text(), function, types))
    if generated:
        for path in (build / "p2pkit").rglob("*.py"):
            text = path.read_text()
            if EXEC in text:
                path.write_text(re.sub(r'exec\(compile\((.*), "exec"\), (\w+)\)',
                                       r'__import__("p2pkit")._generated_exec((\1, "exec"), \2)',
                                       text))
        init = build / "p2pkit" / "__init__.py"
        init.write_text(init.read_text() + HOOK)
        # a compiled function's code cannot be replaced: a loosened tree shape keeps its
        # guarded path, its misses going on to the generic path (the same lines)
        shapes = build / "p2pkit" / "capture" / "tree_shapes.py"
        text = shapes.read_text()
        if LOOSEN not in text:
            raise SystemExit("compiled_bound: tree_shapes.py changed, update LOOSEN")
        shapes.write_text(text.replace(LOOSEN, LOOSEN_COMPILED))
    cythonize(build, [f"p2pkit/{module}.py" for module in HOT])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("captures", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=["gnutella", "mixed"],
                        choices=CAPTURES)
    parser.add_argument("--modes", nargs="*", default=["summary", "tree"], choices=list(MODES))
    parser.add_argument("--typed", action="store_true")
    parser.add_argument("--generated", action="store_true")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--keep", type=Path, help="build into this (new) directory and keep it")
    where.add_argument("--reuse", type=Path, help="measure a build kept by --keep")
    args = parser.parse_args()
    captures = [args.captures / f"{name}.pcap" for name in args.only]
    if args.reuse:
        build = args.reuse.resolve()
    else:
        try:
            import Cython  # noqa: F401  (only to say it is missing, in one line)
        except ImportError:
            raise SystemExit("compiled_bound: Cython is not installed (pip install cython)") from None
        build = (args.keep.resolve() if args.keep
                 else Path(tempfile.mkdtemp(prefix="compiled-bound-")))
        build.mkdir(parents=True, exist_ok=True)
        build_copy(build, args.typed, args.generated)
        if args.generated:
            count = generated_modules(build, captures, args.modes)
            print(f"{count} generated sources compiled", file=sys.stderr)
    for tree in (ROOT, build):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "p2pkit")],
                       check=True)
    digest = hashlib.sha1(b"".join(p.read_bytes() for p in sorted(
        (build / "p2pkit").rglob("*.so")))).hexdigest()[:12]
    print(f"compiled copy: {build} ({len(list((build / 'p2pkit').rglob('*.so')))} "
          f"extension modules, {digest})", file=sys.stderr)
    empty = tempfile.mkdtemp(prefix="compiled-bound-run-")
    print("| Capture | Mode | p2pkit bytecode, CPU s | p2pkit compiled, CPU s | tshark, CPU s "
          "| compiled / bytecode | **compiled / tshark** | bytecode / tshark |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for path in captures if args.runs else ():  # --runs 0: build only
        for mode in args.modes:
            ours, theirs = MODES[mode]
            cpu: dict[str, list[float]] = {"bytecode": [], "compiled": [], "tshark": []}
            for _ in range(args.runs):
                for label, tree in (("bytecode", ROOT), ("compiled", build)):
                    env = dict(os.environ, PYTHONPATH=str(tree))
                    cpu[label].append(timed([sys.executable, "-m", "p2pkit", "dissect",
                                             str(path), *ours], env, empty))
                cpu["tshark"].append(timed(["tshark", "-r", str(path), "-d",
                                            "tcp.port==6346,gnutella", *theirs],
                                           dict(os.environ), empty))
            med = {k: statistics.median(v) for k, v in cpu.items()}
            print(f"| {path.stem} | {mode} | {med['bytecode']:.2f} | {med['compiled']:.2f} "
                  f"| {med['tshark']:.2f} | {med['compiled'] / med['bytecode']:.2f} "
                  f"| **{med['compiled'] / med['tshark']:.2f}** "
                  f"| {med['bytecode'] / med['tshark']:.2f} |", flush=True)
    if not (args.keep or args.reuse):
        shutil.rmtree(build)


if __name__ == "__main__":
    main()
