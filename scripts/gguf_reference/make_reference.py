#!/usr/bin/env python3
"""Write GGUF reference files with llama.cpp's own Python writer (PyPI `gguf`).

The files and `expected.json` (what each file must decode to) are committed under
`suites/fixtures/reference/`; `suites/tests/conformance.rs` checks that Gauntlet's reader
agrees with the reference implementation field by field. Regenerate with:

    python3 -m venv /tmp/gguf-venv && /tmp/gguf-venv/bin/pip install gguf
    /tmp/gguf-venv/bin/python scripts/gguf_reference/make_reference.py suites/fixtures/reference

The output is deterministic (fixed seeds), so regenerating gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGML_QUANT_SIZES, GGUFReader, GGUFValueType as V, GGUFWriter, quants

# Nested arrays as written: the reference reader's `contents()` flattens them, so the
# expected structure comes from here and the reader's flattened view is checked against it.
NESTED = [[1, 2], [3], [4, 5, 6]]


def scalars(w: GGUFWriter) -> None:
    """One key per scalar metadata type, at the edges of each type's range."""
    w.add_key_value("test.u8", 255, V.UINT8)
    w.add_key_value("test.i8", -128, V.INT8)
    w.add_key_value("test.u16", 65535, V.UINT16)
    w.add_key_value("test.i16", -32768, V.INT16)
    w.add_key_value("test.u32", 4294967295, V.UINT32)
    w.add_key_value("test.i32", -2147483648, V.INT32)
    w.add_key_value("test.f32", 3.140625, V.FLOAT32)
    w.add_key_value("test.bool_true", True, V.BOOL)
    w.add_key_value("test.bool_false", False, V.BOOL)
    w.add_key_value("test.string", "héllo, wörld ✓", V.STRING)
    w.add_key_value("test.empty_string", "", V.STRING)
    w.add_key_value("test.u64", 18446744073709551615, V.UINT64)
    w.add_key_value("test.i64", -9223372036854775808, V.INT64)
    w.add_key_value("test.f64", -2.5e-300, V.FLOAT64)


def arrays(w: GGUFWriter) -> None:
    """One array per element type, a string array, and nested arrays."""
    w.add_key_value("arr.u8", [0, 1, 255], V.ARRAY, V.UINT8)
    w.add_key_value("arr.i8", [-128, 0, 127], V.ARRAY, V.INT8)
    w.add_key_value("arr.u16", [0, 65535], V.ARRAY, V.UINT16)
    w.add_key_value("arr.i16", [-32768, 32767], V.ARRAY, V.INT16)
    w.add_key_value("arr.u32", [1, 2, 3, 4294967295], V.ARRAY, V.UINT32)
    w.add_key_value("arr.i32", [-1, 0, 1], V.ARRAY, V.INT32)
    w.add_key_value("arr.f32", [0.5, -1.25, 1e-3], V.ARRAY, V.FLOAT32)
    w.add_key_value("arr.bool", [True, False, True], V.ARRAY, V.BOOL)
    w.add_key_value("arr.string", ["a", "", "ünïcödé"], V.ARRAY, V.STRING)
    w.add_key_value("arr.u64", [18446744073709551615], V.ARRAY, V.UINT64)
    w.add_key_value("arr.i64", [-9223372036854775808, 9223372036854775807], V.ARRAY, V.INT64)
    w.add_key_value("arr.f64", [1.5, -0.0], V.ARRAY, V.FLOAT64)
    w.add_key_value("arr.nested", NESTED, V.ARRAY, V.ARRAY)
    # Longer than 16 elements: `gauntlet inspect --json` summarizes it.
    w.add_key_value("tokenizer.ggml.tokens", [f"tok{i}" for i in range(300)], V.ARRAY, V.STRING)


def quantized(w: GGUFWriter, name: str, qtype: Q, shape: tuple[int, ...], rng: np.random.Generator) -> None:
    """Quantize random data with the reference quantizer and add it as raw bytes."""
    data = rng.standard_normal(shape).astype(np.float32)
    raw = quants.quantize(data, qtype)
    w.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=qtype)


def write_all_types(path: Path) -> None:
    rng = np.random.default_rng(20261125)
    w = GGUFWriter(path, "bitnet-b1.58")
    w.add_name("gauntlet reference: every metadata type")
    scalars(w)
    arrays(w)
    w.add_tensor("t.f32", rng.standard_normal((3, 7)).astype(np.float32))
    w.add_tensor("t.f16", rng.standard_normal((2, 16)).astype(np.float16))
    quantized(w, "t.bf16", Q.BF16, (32,), rng)
    quantized(w, "t.q8_0", Q.Q8_0, (2, 64), rng)
    quantized(w, "t.tq1_0", Q.TQ1_0, (2, 256), rng)
    quantized(w, "t.tq2_0", Q.TQ2_0, (3, 256), rng)
    finish(w)


def write_align64(path: Path) -> None:
    rng = np.random.default_rng(64)
    w = GGUFWriter(path, "llama")
    w.add_custom_alignment(64)
    w.add_key_value("general.name", "gauntlet reference: 64-byte alignment", V.STRING)
    w.add_tensor("odd.f32", rng.standard_normal((5,)).astype(np.float32))
    w.add_tensor("odd.f16", rng.standard_normal((3, 3)).astype(np.float16))
    quantized(w, "odd.tq2_0", Q.TQ2_0, (256,), rng)
    quantized(w, "odd.q8_0", Q.Q8_0, (32,), rng)
    finish(w)


# Byte offsets of each block's f16 fields, kept finite in `write_block_formats`.
F16_FIELDS = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2],
    Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
    Q.IQ4_NL: [0], Q.IQ4_XS: [0], Q.MXFP4: [],
}


def write_block_formats(path: Path) -> None:
    """ggml's legacy formats, k-quants, IQ4_NL, IQ4_XS and MXFP4 as random blocks
    (eight per legacy or table format, two super-blocks per k-quant: random quants and
    packed scales, though not every 6-bit scale value; the f16 scales are random finite
    values), which the reference dequantizer decodes: the reader must agree value for
    value. Q8_0 is in `all_types.gguf`. (`general.name` predates the last three types.)"""
    rng = np.random.default_rng(5)
    w = GGUFWriter(path, "llama")
    w.add_key_value("general.name", "gauntlet reference: legacy and k-quant blocks", V.STRING)
    for qtype, fields in F16_FIELDS.items():
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        blocks = 8 if block_size == 32 else 2
        raw = rng.integers(0, 256, size=(blocks, type_size), dtype=np.uint8)
        for at in fields:
            scales = rng.uniform(-2.0, 2.0, size=blocks).astype(np.float16)
            raw[:, at:at + 2] = scales.view(np.uint8).reshape(blocks, 2)
        if qtype == Q.MXFP4:
            # E8M0 exponents, both subnormal ones (0, 1) included, small enough that
            # 12 · 2^(e - 128) stays finite.
            raw[:, 0] = [0, 1, 2, 100, 127, 128, 150, 250]
        raw = raw.reshape(2, -1)
        w.add_tensor(f"blocks.{qtype.name.lower()}", raw, raw_shape=raw.shape, raw_dtype=qtype)
    finish(w)


def write_metadata_only(path: Path) -> None:
    w = GGUFWriter(path, "llama")
    w.add_key_value("general.name", "gauntlet reference: no tensors", V.STRING)
    w.add_key_value("llama.context_length", 4096, V.UINT32)
    w.add_key_value("tokenizer.ggml.scores", [float(-i) for i in range(40)], V.ARRAY, V.FLOAT32)
    finish(w)


def finish(w: GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


TYPE_NAMES = {
    V.UINT8: "uint8", V.INT8: "int8", V.UINT16: "uint16", V.INT16: "int16",
    V.UINT32: "uint32", V.INT32: "int32", V.FLOAT32: "float32", V.BOOL: "bool",
    V.STRING: "string", V.ARRAY: "array", V.UINT64: "uint64", V.INT64: "int64",
    V.FLOAT64: "float64",
}


def field_value(field):
    """The reference reader's decoded value for one metadata field, JSON-ready."""
    vtype = field.types[0]
    if vtype == V.ARRAY and field.types[1] == V.ARRAY:
        flat = [x for inner in NESTED for x in inner]
        assert field.contents() == flat, "reference reader disagrees with the nested array written"
        return {"type": "array", "element_type": "array", "value": NESTED}
    if vtype == V.ARRAY:
        return {"type": "array", "element_type": TYPE_NAMES[field.types[1]], "value": field.contents()}
    return {"type": TYPE_NAMES[vtype], "value": field.contents()}


def expected_for(path: Path) -> dict:
    """Everything the reference reader sees in `path`."""
    r = GGUFReader(path)
    version = int(r.fields["GGUF.version"].parts[-1][0])
    metadata = {
        name: field_value(f) for name, f in r.fields.items() if not name.startswith("GGUF.")
    }
    tensors = []
    for t in r.tensors:
        data = bytes(np.asarray(t.data).view(np.uint8).reshape(-1))
        decoded = quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(-1)
        tensors.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "type_id": int(t.tensor_type),
            "dims": [int(d) for d in t.shape],
            "offset": int(t.data_offset - r.data_offset),
            "size_bytes": int(t.n_bytes),
            "sha256": hashlib.sha256(data).hexdigest(),
            "values": [float(v) for v in decoded],
        })
    return {
        "version": version,
        "alignment": int(r.alignment),
        "tensor_data_offset": int(r.data_offset),
        "file_size": path.stat().st_size,
        "metadata": metadata,
        "tensors": tensors,
    }


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "suites/fixtures/reference")
    out.mkdir(parents=True, exist_ok=True)
    writers = {
        "all_types.gguf": write_all_types,
        "align64.gguf": write_align64,
        "metadata_only.gguf": write_metadata_only,
        "block_formats.gguf": write_block_formats,
    }
    expected = {}
    for name, write in writers.items():
        path = out / name
        write(path)
        expected[name] = expected_for(path)
    (out / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(writers)} reference files and expected.json to {out}")


if __name__ == "__main__":
    main()
