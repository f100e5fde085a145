//! Conformance with llama.cpp's own GGUF writer: files written by the PyPI `gguf` package
//! (`scripts/gguf_reference/make_reference.py`) must read back exactly as the reference
//! reader saw them — every header field, metadata value and tensor, and every decoded value.

use std::path::{Path, PathBuf};

use gauntlet_engine::gguf::{Gguf, Value, ValueType, decode::decode_f32};
use serde_json::{Value as Json, json};

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/reference")
}

fn expected() -> serde_json::Map<String, Json> {
    let path = reference_dir().join("expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    match serde_json::from_str(&text) {
        Ok(Json::Object(map)) => map,
        other => panic!("{} is not a JSON object: {other:?}", path.display()),
    }
}

/// The reference script's JSON shape for one metadata value: `{"type", "value"}`, with
/// `element_type` for arrays.
fn to_json(value: &Value<'_>) -> Json {
    match value {
        Value::Array(array) => {
            let items: Vec<Json> = array.iter().map(|v| plain(&v)).collect();
            json!({
                "type": "array",
                "element_type": array.element_type().name().to_ascii_lowercase(),
                "value": items,
            })
        }
        v => json!({ "type": v.value_type().name().to_ascii_lowercase(), "value": plain(v) }),
    }
}

fn plain(value: &Value<'_>) -> Json {
    match *value {
        Value::U8(v) => json!(v),
        Value::I8(v) => json!(v),
        Value::U16(v) => json!(v),
        Value::I16(v) => json!(v),
        Value::U32(v) => json!(v),
        Value::I32(v) => json!(v),
        // f32 → f64 is exact, and the script recorded the f32's exact value.
        Value::F32(v) => json!(f64::from(v)),
        Value::Bool(v) => json!(v),
        Value::String(v) => json!(v),
        Value::Array(a) => Json::Array(a.iter().map(|v| plain(&v)).collect()),
        Value::U64(v) => json!(v),
        Value::I64(v) => json!(v),
        Value::F64(v) => json!(v),
    }
}

fn check_file(name: &str, want: &Json) {
    let path = reference_dir().join(name);
    let mapped = Gguf::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let gguf = mapped.gguf();

    assert_eq!(json!(gguf.version()), want["version"], "{name}: version");
    assert_eq!(
        json!(gguf.alignment()),
        want["alignment"],
        "{name}: alignment"
    );
    assert_eq!(
        json!(gguf.tensor_data_offset()),
        want["tensor_data_offset"],
        "{name}: tensor data offset"
    );
    assert_eq!(json!(mapped.len()), want["file_size"], "{name}: file size");

    let want_meta = want["metadata"].as_object().expect("metadata object");
    let ours: Vec<(String, Json)> = gguf
        .metadata()
        .map(|(k, v)| (k.to_string(), to_json(&v)))
        .collect();
    // serde_json's map is sorted, so compare the key sets sorted.
    let mut our_keys: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
    our_keys.sort_unstable();
    let want_keys: Vec<&str> = want_meta.keys().map(String::as_str).collect();
    assert_eq!(our_keys, want_keys, "{name}: metadata keys");
    for (key, value) in &ours {
        assert_eq!(value, &want_meta[key], "{name}: metadata {key}");
    }

    let want_tensors = want["tensors"].as_array().expect("tensors array");
    assert_eq!(
        gguf.tensors().len(),
        want_tensors.len(),
        "{name}: tensor count"
    );
    for (t, w) in gguf.tensors().zip(want_tensors) {
        let tname = t.name().to_string();
        assert_eq!(json!(tname), w["name"], "{name}: tensor order");
        assert_eq!(
            json!(t.ggml_type().name()),
            w["type"],
            "{name}: {tname} type"
        );
        assert_eq!(
            json!(t.ggml_type().id()),
            w["type_id"],
            "{name}: {tname} type id"
        );
        assert_eq!(json!(t.dims()), w["dims"], "{name}: {tname} dims");
        assert_eq!(json!(t.offset()), w["offset"], "{name}: {tname} offset");
        assert_eq!(
            json!(t.size_bytes()),
            w["size_bytes"],
            "{name}: {tname} size"
        );
        assert_eq!(
            t.data().len() as u64,
            t.size_bytes(),
            "{name}: {tname} data slice"
        );

        let want_values = w["values"].as_array().expect("values array");
        let values = decode_f32(t.ggml_type(), t.data(), want_values.len())
            .unwrap_or_else(|e| panic!("{name}: {tname}: {e}"));
        for (i, (ours, theirs)) in values.iter().zip(want_values).enumerate() {
            assert_eq!(
                json!(f64::from(*ours)),
                *theirs,
                "{name}: {tname} value {i} differs from the reference dequantizer"
            );
        }
    }
}

#[test]
fn reference_files_read_back_as_the_reference_reader_saw_them() {
    let expected = expected();
    assert!(
        expected.len() >= 3,
        "expected.json lists {} files",
        expected.len()
    );
    for (name, want) in &expected {
        check_file(name, want);
    }
}

#[test]
fn every_metadata_value_type_is_covered_by_the_reference_files() {
    let mut seen = std::collections::BTreeSet::new();
    for name in expected().keys() {
        let mapped = Gguf::open(reference_dir().join(name)).expect("reference file opens");
        for (_, value) in mapped.gguf().metadata() {
            seen.insert(value.value_type().id());
            if let Value::Array(a) = value {
                seen.insert(a.element_type().id());
            }
        }
    }
    let all: std::collections::BTreeSet<u32> = (0..=12).collect();
    assert_eq!(
        seen,
        all,
        "value types seen vs all 13 ({:?})",
        ValueType::from_id(0)
    );
}
