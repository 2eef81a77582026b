"""The ``.proto`` definitions quoted in the specs, compiled with protoc (grpcio-tools) at test
time into message classes of the ``protobuf`` package: the independent reference p2pkit's
declared messages are compared with byte for byte.

Only the spec text is used, with the smallest edits that make protoc accept it (a missing
``syntax`` line; fields without label in a block marked proto2).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SPECS = Path("/work/shared/specs/libp2p-ipfs")
if not SPECS.is_dir():  # the copy next to the repository (CI checkouts)
    SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs" / "libp2p-ipfs"


def require_specs() -> None:
    """Skip (outside CI) or fail (in CI) when the spec copies are not on this machine."""
    if SPECS.is_dir():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the spec copies are missing: {SPECS}")
    pytest.skip(f"needs the spec copies in {SPECS}")


def _blocks(name: str) -> list[str]:
    text = (SPECS / name).read_text()
    return re.findall(r"```\s*proto(?:buf)?\n(.*?)```", text, re.S)


def _label_proto2(block: str) -> str:
    """Give unlabeled fields of a block written without labels an ``optional`` label."""
    out = []
    for line in block.splitlines():
        if re.match(r"\s*(?!optional|required|repeated|message|enum|syntax|package|option|//)"
                    r"[A-Za-z][\w.]*\s+\w+\s*=\s*\d+\s*;", line):
            indent = line[: len(line) - len(line.lstrip())]
            line = indent + "optional " + line.lstrip()
        out.append(line)
    return "\n".join(out)


def _sources() -> dict[str, str]:
    crypto = _blocks("libp2p-peer-ids-peer-ids.md")[0]
    envelope = _blocks("libp2p-RFC-0002-signed-envelopes.md")[0].replace(
        "package record.pb;", 'package record.pb;\nimport "crypto.proto";')
    noise = _blocks("libp2p-noise.md")[0]
    # RFC 0003 (routing records) adds signedPeerRecord = 8 to identify; the identify spec's
    # block predates it
    identify = _blocks("libp2p-identify.md")[0].replace(
        "repeated string protocols = 3;",
        "repeated string protocols = 3;\n  optional bytes signedPeerRecord = 8;")
    kad = _blocks("libp2p-kad-dht.md")[0].replace('syntax = "proto2";', 'syntax = "proto3";')
    # the 1.2.0 block leaves out field 2, the 1.0.0 ``blocks`` the 1.0.0 block declares and
    # boxo's message.proto keeps
    bitswap = 'syntax = "proto3";\npackage bitswap;\n' + _blocks("ipfs-bitswap-protocol.md")[
        2].replace("Wantlist wantlist = 1;", "Wantlist wantlist = 1;\n  repeated bytes blocks = 2;")
    dag_pb = 'syntax = "proto2";\npackage dagpb;\n' + _blocks("ipld-dag-pb.md")[0]
    unixfs = ('syntax = "proto2";\npackage unixfs;\n'
              + _label_proto2(next(b for b in _blocks("ipfs-unixfs.md")
                                               if "message Data {" in b)))
    return {"crypto.proto": crypto, "envelope.proto": envelope,
            "noise.proto": noise.replace('syntax = "proto2";', 'syntax = "proto2";\npackage noise;'),
            "identify.proto": identify.replace('syntax = "proto2";',
                                               'syntax = "proto2";\npackage identify;'),
            "kad.proto": kad.replace('syntax = "proto3";', 'syntax = "proto3";\npackage kad;'),
            "bitswap.proto": bitswap, "dagpb.proto": dag_pb, "unixfs.proto": unixfs}


@functools.cache
def classes() -> dict[str, type]:
    """``{"crypto.PublicKey": class, "kad.Message": class, ...}`` (file stem + message path)."""
    require_specs()
    grpc_tools = pytest.importorskip("grpc_tools", reason="grpcio-tools compiles the spec protos")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    out: dict[str, type] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in _sources().items():
            (Path(tmp) / name).write_text(text)
        desc = Path(tmp) / "all.desc"
        includes = Path(grpc_tools.__file__).parent / "_proto"
        run = subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp}", f"-I{includes}",
             "--include_imports", f"--descriptor_set_out={desc}", *_sources()],
            capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        files = descriptor_pb2.FileDescriptorSet.FromString(desc.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    for f in files.file:
        fd = pool.FindFileByName(f.name)
        stem = f.name.removesuffix(".proto")

        def walk(msg, prefix, stem=stem):
            out[f"{stem}.{prefix}{msg.name}"] = message_factory.GetMessageClass(msg)
            for nested in msg.nested_types:
                walk(nested, f"{prefix}{msg.name}.")
        for msg in fd.message_types_by_name.values():
            walk(msg, "")
    return out
