//! Reader ↔ writer round trips and the reader's behaviour on files the writer built.

use proptest::prelude::*;
use rstest::rstest;

use super::*;

fn every_type_metadata() -> Vec<(&'static str, MetaValue)> {
    vec![
        ("t.u8", MetaValue::U8(200)),
        ("t.i8", MetaValue::I8(-7)),
        ("t.u16", MetaValue::U16(65535)),
        ("t.i16", MetaValue::I16(-300)),
        ("t.u32", MetaValue::U32(4_000_000_000)),
        ("t.i32", MetaValue::I32(-2_000_000_000)),
        ("t.f32", MetaValue::F32(1.25)),
        ("t.bool", MetaValue::Bool(true)),
        ("t.string", MetaValue::String("héllo".into())),
        ("t.u64", MetaValue::U64(u64::MAX)),
        ("t.i64", MetaValue::I64(i64::MIN)),
        ("t.f64", MetaValue::F64(-0.5)),
        ("t.strings", MetaValue::strings(["a", "", "ccc"])),
        (
            "t.nested",
            MetaValue::Array {
                elem: ValueType::Array,
                items: vec![
                    MetaValue::Array {
                        elem: ValueType::U8,
                        items: vec![MetaValue::U8(1), MetaValue::U8(2)],
                    },
                    MetaValue::Array {
                        elem: ValueType::Bool,
                        items: vec![],
                    },
                ],
            },
        ),
    ]
}

fn build(alignment: u32, tensors: &[(&str, &[u64], GgmlType)]) -> Vec<u8> {
    let mut b = GgufBuilder::new();
    b.alignment(alignment).expect("valid alignment");
    for (k, v) in every_type_metadata() {
        b.metadata(k, v).expect("valid metadata");
    }
    let sizes: Vec<u64> = tensors
        .iter()
        .map(|(n, d, t)| b.tensor(n, d, *t).expect("valid tensor"))
        .collect();
    let mut w = b.start(Vec::new()).expect("writes to a Vec");
    for (i, size) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*size).map(|j| (i as u64 * 31 + j) as u8).collect();
        // Chunks of 7 bytes prove a tensor can arrive in pieces.
        for chunk in data.chunks(7) {
            w.write_data(chunk).expect("declared size");
        }
    }
    w.finish().expect("all data written")
}

const TENSORS: &[(&str, &[u64], GgmlType)] = &[
    ("token_embd.weight", &[8, 3], GgmlType::F16),
    ("blk.0.attn_q.weight", &[256, 2], GgmlType::TQ2_0),
    ("blk.0.ffn_up.weight", &[256], GgmlType::TQ1_0),
    ("output_norm.weight", &[5], GgmlType::F32),
    ("empty", &[0, 4], GgmlType::F32),
    ("q8", &[64], GgmlType::Q8_0),
];

#[rstest]
#[case::default_alignment(32)]
#[case::tiny_alignment(1)]
#[case::page_alignment(4096)]
fn writer_output_reads_back_field_for_field(#[case] alignment: u32) {
    let bytes = build(alignment, TENSORS);
    let g = Gguf::parse(&bytes).expect("writer output is valid");
    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), u64::from(alignment));
    assert_eq!(g.tensor_data_offset() % u64::from(alignment), 0);
    assert_eq!(bytes.len() as u64 % u64::from(alignment), 0);
    for (k, v) in every_type_metadata() {
        let got = g.get(k).unwrap_or_else(|| panic!("{k} missing"));
        assert_eq!(to_meta(&got), v, "{k}");
    }
    assert_eq!(g.tensors().len(), TENSORS.len());
    for (i, (t, (name, dims, ty))) in g.tensors().zip(TENSORS).enumerate() {
        assert_eq!((t.name(), t.dims(), t.ggml_type()), (*name, *dims, *ty));
        assert_eq!(t.offset() % u64::from(alignment), 0);
        assert_eq!(t.data().len() as u64, t.size_bytes());
        let expected: Vec<u8> = (0..t.size_bytes())
            .map(|j| (i as u64 * 31 + j) as u8)
            .collect();
        assert_eq!(t.data(), &expected[..], "{name}");
    }
}

/// Converts a borrowed value back to the writer's owned form for comparison.
fn to_meta(v: &Value<'_>) -> MetaValue {
    match *v {
        Value::U8(x) => MetaValue::U8(x),
        Value::I8(x) => MetaValue::I8(x),
        Value::U16(x) => MetaValue::U16(x),
        Value::I16(x) => MetaValue::I16(x),
        Value::U32(x) => MetaValue::U32(x),
        Value::I32(x) => MetaValue::I32(x),
        Value::F32(x) => MetaValue::F32(x),
        Value::Bool(x) => MetaValue::Bool(x),
        Value::String(s) => MetaValue::String(s.to_string()),
        Value::Array(a) => MetaValue::Array {
            elem: a.element_type(),
            items: a.iter().map(|e| to_meta(&e)).collect(),
        },
        Value::U64(x) => MetaValue::U64(x),
        Value::I64(x) => MetaValue::I64(x),
        Value::F64(x) => MetaValue::F64(x),
    }
}

fn scalar() -> impl Strategy<Value = MetaValue> {
    prop_oneof![
        any::<u8>().prop_map(MetaValue::U8),
        any::<i8>().prop_map(MetaValue::I8),
        any::<u16>().prop_map(MetaValue::U16),
        any::<i16>().prop_map(MetaValue::I16),
        any::<u32>().prop_map(MetaValue::U32),
        any::<i32>().prop_map(MetaValue::I32),
        any::<f32>()
            .prop_filter("NaN != NaN", |f| !f.is_nan())
            .prop_map(MetaValue::F32),
        any::<bool>().prop_map(MetaValue::Bool),
        ".{0,12}".prop_map(MetaValue::String),
        any::<u64>().prop_map(MetaValue::U64),
        any::<i64>().prop_map(MetaValue::I64),
        any::<f64>()
            .prop_filter("NaN != NaN", |f| !f.is_nan())
            .prop_map(MetaValue::F64),
    ]
}

fn meta_value() -> impl Strategy<Value = MetaValue> {
    scalar().prop_recursive(3, 24, 6, |inner| {
        (inner, 0usize..6).prop_map(|(item, n)| MetaValue::Array {
            elem: item.value_type(),
            items: vec![item; n],
        })
    })
}

proptest! {
    #[test]
    fn any_metadata_round_trips(values in proptest::collection::vec(meta_value(), 0..8)) {
        let mut b = GgufBuilder::new();
        for (i, v) in values.iter().enumerate() {
            b.metadata(&format!("k{i}"), v.clone()).expect("valid");
        }
        let bytes = b.start(Vec::new()).and_then(|w| w.finish()).expect("no tensors");
        let g = Gguf::parse(&bytes).expect("valid");
        for (i, v) in values.iter().enumerate() {
            let got = g.get(&format!("k{i}")).expect("present");
            prop_assert_eq!(&to_meta(&got), v);
        }
    }

    #[test]
    fn any_prefix_either_parses_or_asks_for_more(cut in 0usize..2000) {
        let bytes = build(32, TENSORS);
        let cut = cut.min(bytes.len());
        match GgufHead::parse(&bytes[..cut], bytes.len() as u64) {
            Ok(h) => prop_assert!(h.tensor_data_offset() as usize <= cut.max(h.tensor_data_offset() as usize)),
            Err(e) => {
                let needed = e.needed_bytes();
                prop_assert!(needed.is_some(), "unexpected {e}");
                prop_assert!(needed.unwrap_or(0) > cut as u64);
            }
        }
    }
}

#[test]
fn prefix_up_to_the_data_section_is_enough() {
    let bytes = build(32, TENSORS);
    let full = Gguf::parse(&bytes).expect("valid");
    let n = full.tensor_data_offset() as usize;
    let head = GgufHead::parse(&bytes[..n], bytes.len() as u64).expect("prefix covers the table");
    assert_eq!(head.tensor_infos(), full.tensor_infos());
    assert_eq!(head.get_str("t.string").expect("string"), "héllo");
}

#[test]
fn owned_head_reads_a_stream_in_growing_steps() {
    let bytes = build(32, TENSORS);
    let owned = OwnedGgufHead::read_from(&bytes[..], bytes.len() as u64).expect("valid");
    assert_eq!(owned.head().tensor_infos().len(), TENSORS.len());
}

#[test]
fn file_len_prediction_matches_the_output() {
    let mut b = GgufBuilder::new();
    b.metadata("a", MetaValue::strings(["x"; 10]))
        .expect("valid");
    let size = b.tensor("w", &[256, 4], GgmlType::TQ2_0).expect("valid");
    let predicted = b.file_len();
    let mut w = b.start(Vec::new()).expect("vec");
    w.write_data(&vec![0; size as usize]).expect("exact");
    assert_eq!(w.finish().expect("done").len() as u64, predicted);
}

#[test]
fn typed_getter_error_names_key_and_both_types() {
    let bytes = build(32, &[]);
    let g = Gguf::parse(&bytes).expect("valid");
    let err = g.get_u32("t.string").expect_err("it is a string");
    let msg = err.to_string();
    assert!(
        msg.contains("t.string") && msg.contains("UINT32") && msg.contains("STRING"),
        "{msg}"
    );
    let err = g.get_str("t.strings").expect_err("it is an array");
    assert!(err.to_string().contains("ARRAY[STRING]"), "{err}");
    assert!(matches!(
        g.get_u8("nope"),
        Err(GgufError::MissingKey { .. })
    ));
}

#[test]
fn cut_file_names_first_tensor_past_eof_with_sizes() {
    let bytes = build(32, TENSORS);
    let g = Gguf::parse(&bytes).expect("valid");
    let victim = g.tensor("blk.0.attn_q.weight").expect("declared");
    let cut = (g.tensor_data_offset() + victim.offset() + 1) as usize;
    let err = Gguf::parse(&bytes[..cut]).expect_err("truncated");
    match err {
        GgufError::TensorPastEof {
            tensor,
            end,
            file_len,
            ..
        } => {
            assert_eq!(tensor, "blk.0.attn_q.weight");
            assert_eq!(
                end,
                g.tensor_data_offset() + victim.offset() + victim.size_bytes()
            );
            assert_eq!(file_len, cut as u64);
        }
        other => panic!("wrong error: {other}"),
    }
}

#[test]
fn writer_rejects_data_beyond_the_declared_size() {
    let mut b = GgufBuilder::new();
    b.tensor("a", &[2], GgmlType::F32).expect("valid");
    let mut w = b.start(Vec::new()).expect("vec");
    assert!(matches!(
        w.write_data(&[0; 9]),
        Err(GgufError::WriterMisuse { .. })
    ));
    w.write_data(&[0; 8]).expect("exact size");
    assert!(w.write_data(&[0]).is_err());
}

#[test]
fn writer_rejects_missing_data_at_finish() {
    let mut b = GgufBuilder::new();
    b.tensor("a", &[2], GgmlType::F32).expect("valid");
    let w = b.start(Vec::new()).expect("vec");
    let err = w.finish().expect_err("no data");
    assert!(err.to_string().contains("got 0 of its 8 bytes"), "{err}");
}

mod open {
    use super::*;

    #[test]
    fn a_real_file_maps_and_serves_tensor_data() {
        let bytes = build(32, TENSORS);
        let file = tempfile::NamedTempFile::new().expect("tempfile");
        std::fs::write(file.path(), &bytes).expect("write");
        let mapped = Gguf::open(file.path()).expect("valid");
        let g = mapped.gguf();
        assert_eq!(g.tensor("q8").map(|t| t.data().len()), Some(34 * 2));
        assert_eq!(mapped.len(), bytes.len() as u64);
    }

    #[test]
    fn an_empty_file_is_a_clean_parse_error() {
        let file = tempfile::NamedTempFile::new().expect("tempfile");
        let err = Gguf::open(file.path()).expect_err("empty");
        assert!(err.to_string().contains("the file is empty"), "{err}");
        assert!(!err.is_io());
    }

    #[test]
    fn a_directory_is_rejected_before_mapping() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Gguf::open(dir.path()).expect_err("directory");
        assert!(
            matches!(
                err,
                GgufError::NotRegularFile {
                    kind: "directory",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Gguf::open(dir.path().join("nope.gguf")).expect_err("missing");
        assert!(err.is_io(), "{err}");
    }
}

#[test]
fn version_2_files_read_like_version_3() {
    // v2 and v3 share the layout (64-bit counts); only the version field differs.
    let mut bytes = build(32, TENSORS);
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let g = Gguf::parse(&bytes).expect("v2 is supported");
    assert_eq!(g.version(), 2);
    assert_eq!(g.tensors().len(), TENSORS.len());
}
