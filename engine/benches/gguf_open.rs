//! Opening a GGUF file: map + validate + index, against the floor of merely
//! opening the file and reading its 24 header bytes, on two warm-cache files:
//!
//! - the `bitnet-2b4t` fixture (>1 GiB, 332 tensors, a 128,256-token vocabulary);
//! - a metadata-heavy file like a real 262k-vocabulary model: 262,144 tokens,
//!   scores and token types, merges, and 300 small tensors.
//!
//! Both files are read once before measuring, so the page cache is warm.

use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use gauntlet_engine::fixture::{Preset, WeightFormat};
use gauntlet_engine::gguf::{GgmlType, Gguf, GgufBuilder, MetaValue, ValueType};

const VOCAB: u64 = 262_144;

fn metadata_heavy(path: &Path) {
    let mut b = GgufBuilder::new();
    let meta = |b: &mut GgufBuilder, k: &str, v| {
        b.metadata(k, v).expect("valid metadata");
    };
    meta(
        &mut b,
        "general.architecture",
        MetaValue::String("gemma3".into()),
    );
    meta(
        &mut b,
        "tokenizer.ggml.model",
        MetaValue::String("llama".into()),
    );
    meta(
        &mut b,
        "tokenizer.ggml.tokens",
        MetaValue::strings((0..VOCAB).map(|i| format!("▁piece{i}"))),
    );
    meta(
        &mut b,
        "tokenizer.ggml.scores",
        MetaValue::Array {
            elem: ValueType::F32,
            items: (0..VOCAB).map(|i| MetaValue::F32(-(i as f32))).collect(),
        },
    );
    meta(
        &mut b,
        "tokenizer.ggml.token_type",
        MetaValue::Array {
            elem: ValueType::I32,
            items: (0..VOCAB).map(|i| MetaValue::I32((i % 6) as i32)).collect(),
        },
    );
    meta(
        &mut b,
        "tokenizer.ggml.merges",
        MetaValue::strings((0..VOCAB / 4).map(|i| format!("a{i} b{i}"))),
    );
    let sizes: Vec<u64> = (0..300)
        .map(|i| {
            b.tensor(
                &format!("blk.{}.w{}", i / 10, i % 10),
                &[256, 4],
                GgmlType::F32,
            )
        })
        .collect::<Result<_, _>>()
        .expect("valid tensors");
    let file = std::fs::File::create(path).expect("create bench file");
    let mut w = b.start(std::io::BufWriter::new(file)).expect("header");
    for size in sizes {
        w.write_data(&vec![0u8; size as usize]).expect("data");
    }
    w.finish().expect("finish");
}

fn header_floor(path: &Path) -> [u8; 24] {
    let mut header = [0u8; 24];
    let mut f = std::fs::File::open(path).expect("open");
    f.read_exact(&mut header).expect("read header");
    header
}

fn warm(path: &Path) {
    let mut f = std::fs::File::open(path).expect("open");
    std::io::copy(&mut f, &mut std::io::sink()).expect("read through");
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let heavy = dir.path().join("vocab-262k.gguf");
    metadata_heavy(&heavy);
    let fixture = gauntlet_suites::fixtures::path(Preset::Bitnet2b4t, WeightFormat::Tq2_0, 0);
    let files: [(&str, PathBuf); 2] = [("bitnet-2b4t", fixture), ("vocab-262k", heavy)];

    let mut group = c.benchmark_group("gguf_open");
    for (name, path) in &files {
        warm(path);
        group.bench_function(format!("{name}/header_floor"), |b| {
            b.iter(|| black_box(header_floor(path)))
        });
        group.bench_function(format!("{name}/open_validate_index"), |b| {
            b.iter(|| {
                let mapped = Gguf::open(path).expect("valid");
                black_box(mapped.gguf().tensor_infos().len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
