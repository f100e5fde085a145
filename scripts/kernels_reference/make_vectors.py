#!/usr/bin/env python3
"""Write TQ1_0 / TQ2_0 reference vectors with the PyPI `gguf` package (llama.cpp's gguf-py).

For every case this writes, under kernels/tests/vectors/:
  <case>.input.f32          the f32 input (little-endian)
  <case>.<fmt>.bin          gguf.quants.quantize(input, fmt) bytes
  <case>.<fmt>.dequant.f32  gguf.quants.dequantize(those bytes, fmt)
and manifest.txt with one "<case> <n_weights>" line per case, which the Rust tests read.

Usage (from the repository root):
  python3 -m venv /tmp/kref-venv && /tmp/kref-venv/bin/pip install gguf numpy
  /tmp/kref-venv/bin/python scripts/kernels_reference/make_vectors.py
The inputs are generated from a fixed seed, so rerunning reproduces the committed files.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
from gguf import GGMLQuantizationType
from gguf import quants

OUT = pathlib.Path(__file__).resolve().parents[2] / "kernels" / "tests" / "vectors"
FORMATS = {"tq1_0": GGMLQuantizationType.TQ1_0, "tq2_0": GGMLQuantizationType.TQ2_0}


def cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20241125)
    out: dict[str, np.ndarray] = {}
    out["normal"] = rng.standard_normal(4 * 256).astype(np.float32)
    out["uniform_wide"] = rng.uniform(-1000.0, 1000.0, 2 * 256).astype(np.float32)
    # Exactly ternary weights, the BitNet case: must survive the round trip unchanged.
    s = np.float32(0.375)
    out["ternary"] = (rng.integers(-1, 2, 3 * 256).astype(np.float32) * s).astype(np.float32)
    # An all-zero block (scale 0, inverse scale 0) next to a normal one.
    z = np.zeros(256, dtype=np.float32)
    out["zero_block"] = np.concatenate([z, rng.standard_normal(256).astype(np.float32)])
    # Values at exactly +-amax/2: lroundf's half-away-from-zero tie rule decides the code.
    ties = rng.choice(np.array([-1.0, -0.5, 0.0, 0.5, 1.0], dtype=np.float32), 256)
    ties[0] = 1.0
    out["ties"] = (ties * np.float32(2.0)).astype(np.float32)
    # Tiny and huge magnitudes (f16 scale underflow / overflow to inf).
    out["tiny"] = (rng.standard_normal(256) * 1e-7).astype(np.float32)
    out["huge"] = (rng.standard_normal(256) * 1e5).astype(np.float32)
    return out


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = []
    for name, x in cases().items():
        x = np.ascontiguousarray(x, dtype="<f4")
        (OUT / f"{name}.input.f32").write_bytes(x.tobytes())
        for fmt, qtype in FORMATS.items():
            q = quants.quantize(x.reshape(1, -1), qtype)
            (OUT / f"{name}.{fmt}.bin").write_bytes(q.tobytes())
            d = quants.dequantize(q, qtype).astype("<f4")
            (OUT / f"{name}.{fmt}.dequant.f32").write_bytes(d.tobytes())
        manifest.append(f"{name} {x.size}")
    (OUT / "manifest.txt").write_text("\n".join(manifest) + "\n")
    print(f"wrote {len(manifest)} cases to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
