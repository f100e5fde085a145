//! The committed vectors written by gguf-py (`scripts/kernels_reference/make_vectors.py`)
//! match our TQ1_0 / TQ2_0 quantizer and dequantizer byte for byte.

use std::path::PathBuf;

use gauntlet_kernels::format::TernaryFormat;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vectors")
}

fn read(name: &str) -> Vec<u8> {
    let path = vectors_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn cases() -> Vec<(String, usize)> {
    let manifest = String::from_utf8(read("manifest.txt")).expect("manifest is UTF-8");
    let cases: Vec<(String, usize)> = manifest
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, n) = l.split_once(' ').expect("manifest line is `<case> <n>`");
            (name.to_string(), n.parse().expect("weight count"))
        })
        .collect();
    assert!(cases.len() >= 5, "manifest lists too few cases: {cases:?}");
    cases
}

/// Same value, or both NaN: `inf · 0` (the `huge` case) is NaN in both implementations.
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn check_format(format: TernaryFormat, tag: &str) {
    for (case, n) in cases() {
        let input = f32s(&read(&format!("{case}.input.f32")));
        assert_eq!(input.len(), n, "{case}: input length");
        let expected = read(&format!("{case}.{tag}.bin"));
        let ours = format.quantize(&input).expect("quantize");
        assert_eq!(
            ours.len(),
            format.tensor_bytes(n).expect("size"),
            "{case}: {format} size"
        );
        if let Some(i) = ours.iter().zip(&expected).position(|(a, b)| a != b) {
            panic!(
                "{case}: {format} byte {i} is {:#04x}, reference {:#04x}",
                ours[i], expected[i]
            );
        }
        assert_eq!(ours, expected, "{case}: {format} bytes");

        let deq_expected = f32s(&read(&format!("{case}.{tag}.dequant.f32")));
        let deq = format.dequantize(&expected, n).expect("dequantize");
        for (i, (a, b)) in deq.iter().zip(&deq_expected).enumerate() {
            assert!(
                same(*a, *b),
                "{case}: {format} value {i} is {a}, reference {b}"
            );
        }
        assert_eq!(deq.len(), deq_expected.len());

        let prefix = format.dequantize_prefix(&expected, n, 300).expect("prefix");
        assert!(
            prefix.iter().zip(&deq_expected).all(|(a, b)| same(*a, *b)),
            "{case}: prefix decode"
        );
    }
}

#[test]
fn tq1_0_matches_gguf_py_byte_for_byte() {
    check_format(TernaryFormat::Tq1_0, "tq1_0");
}

#[test]
fn tq2_0_matches_gguf_py_byte_for_byte() {
    check_format(TernaryFormat::Tq2_0, "tq2_0");
}
