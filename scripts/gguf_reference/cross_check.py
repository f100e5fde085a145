#!/usr/bin/env python3
"""Cross-check `gauntlet inspect --json` against llama.cpp's reference reader (PyPI `gguf`).

For each file: the reference reader must accept it, and both must agree on the version,
alignment, absolute tensor-data offset, every metadata key and value (arrays longer than 16
elements as `{"type": "array", "element_type", "len"}`), and every tensor's name, type, dims,
relative offset and byte size. Exits non-zero naming the first disagreement.

Element types use the reference's own names (`GGUFValueType`: UINT8 … FLOAT64). I2_S files
(BitNet fork type id 36) cannot be checked: the mainline reference does not know that id.

    python cross_check.py --gauntlet target/debug/gauntlet FILE.gguf [FILE.gguf ...]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFValueType as V, quants

# Decoded values compared per tensor by `--values` (the first N).
VALUES = 512

SUMMARY_OVER = 16


class Mismatch(Exception):
    pass


def same_value(ours, theirs, vtype) -> bool:
    if vtype in (V.FLOAT32, V.FLOAT64) and isinstance(theirs, float):
        if not isinstance(ours, (int, float)):
            return False
        if math.isnan(theirs):
            return math.isnan(ours)
        if vtype == V.FLOAT32:
            return np.float32(ours) == np.float32(theirs)
        return float(ours) == theirs
    return ours == theirs


def check_metadata(path: Path, ours: dict, reader: GGUFReader) -> int:
    checked = 0
    theirs_keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    if sorted(theirs_keys) != sorted(ours):
        missing = sorted(set(theirs_keys) - set(ours))
        extra = sorted(set(ours) - set(theirs_keys))
        raise Mismatch(f"{path}: metadata keys differ: missing {missing[:5]}, extra {extra[:5]}")
    for key in theirs_keys:
        field = reader.fields[key]
        vtype = field.types[0]
        mine = ours[key]
        if vtype == V.ARRAY:
            etype = field.types[1]
            n = len(field.data)
            if n > SUMMARY_OVER:
                want = {"type": "array", "element_type": V(etype).name, "len": n}
                if mine != want:
                    raise Mismatch(f"{path}: key {key!r}: expected summary {want}, got {mine}")
            elif etype == V.ARRAY:
                flat = [x for inner in mine for x in inner] if isinstance(mine, list) else mine
                if flat != field.contents():
                    raise Mismatch(f"{path}: key {key!r}: nested array {mine} != {field.contents()}")
            else:
                theirs = field.contents()
                if not isinstance(mine, list) or len(mine) != len(theirs) or not all(
                    same_value(a, b, etype) for a, b in zip(mine, theirs)
                ):
                    raise Mismatch(f"{path}: key {key!r}: {mine} != {theirs}")
        else:
            theirs = field.contents()
            if not same_value(mine, theirs, vtype):
                raise Mismatch(f"{path}: key {key!r}: {mine!r} != {theirs!r}")
        checked += 1
    return checked


def check_values(gauntlet: str, path: Path, reader: GGUFReader) -> int:
    """`gauntlet inspect --tensor T --values N` equals the reference dequantizer, bit for bit."""
    checked = 0
    for t in reader.tensors:
        try:
            theirs = quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(-1)[:VALUES]
        except NotImplementedError:
            continue  # the reference cannot decode this type either
        out = subprocess.run(
            [gauntlet, "inspect", str(path), "--tensor", t.name, "--values", str(VALUES), "--json"],
            capture_output=True, text=True, timeout=120,
        )
        if out.returncode != 0:
            raise Mismatch(f"{path}: inspect --tensor {t.name}: exit {out.returncode}: {out.stderr.strip()}")
        ours = np.array(json.loads(out.stdout)["values"], dtype=np.float32)
        if ours.shape != theirs.shape or not np.array_equal(ours.view(np.uint32), theirs.astype(np.float32).view(np.uint32)):
            bad = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if np.float32(a) != np.float32(b)), None)
            raise Mismatch(f"{path}: tensor {t.name!r}: value {bad} differs ({len(ours)} vs {len(theirs)} values)")
        checked += 1
    return checked


def check_file(gauntlet: str, path: Path, values: bool) -> str:
    out = subprocess.run(
        [gauntlet, "inspect", "--json", str(path)], capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        raise Mismatch(f"{path}: gauntlet inspect exited {out.returncode}: {out.stderr.strip()}")
    ours = json.loads(out.stdout)
    reader = GGUFReader(path)  # raises if the reference rejects the file
    version = int(reader.fields["GGUF.version"].parts[-1][0])
    for key, theirs in (
        ("version", version),
        ("alignment", int(reader.alignment)),
        ("tensor_data_offset", int(reader.data_offset)),
    ):
        if ours.get(key) != theirs:
            raise Mismatch(f"{path}: {key}: gauntlet says {ours.get(key)}, reference says {theirs}")
    n_keys = check_metadata(path, ours["metadata"], reader)
    if len(ours["tensors"]) != len(reader.tensors):
        raise Mismatch(f"{path}: {len(ours['tensors'])} tensors vs reference {len(reader.tensors)}")
    for mine, t in zip(ours["tensors"], reader.tensors):
        want = {
            "name": t.name,
            "type": t.tensor_type.name,
            "type_id": int(t.tensor_type),
            "dims": [int(d) for d in t.shape],
            "offset": int(t.data_offset - reader.data_offset),
            "size_bytes": int(t.n_bytes),
        }
        got = {k: mine.get(k) for k in want}
        if got != want:
            raise Mismatch(f"{path}: tensor {t.name!r}: gauntlet {got} != reference {want}")
    decoded = f", {check_values(gauntlet, path, reader)} decoded identically" if values else ""
    return f"ok {path.name}: {n_keys} metadata keys, {len(reader.tensors)} tensors agree{decoded}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gauntlet", required=True, help="path to the gauntlet binary")
    ap.add_argument("--values", action="store_true",
                    help=f"also compare the first {VALUES} decoded values of every tensor")
    ap.add_argument("files", nargs="+", type=Path)
    args = ap.parse_args()
    failed = 0
    for path in args.files:
        try:
            print(check_file(args.gauntlet, path, args.values))
        except Mismatch as e:
            print(f"MISMATCH {e}", file=sys.stderr)
            failed += 1
        except Exception as e:  # the reference reader rejecting our file is a failure too
            print(f"FAILED {path}: {type(e).__name__}: {e}", file=sys.stderr)
            failed += 1
    print(f"cross-check: {len(args.files) - failed} file(s) agree with the reference reader, {failed} disagree")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
