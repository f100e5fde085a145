//! Any byte sequence given to the GGUF parser yields a value or a typed error:
//! never a panic, an abort, or an allocation sized by the input. A successful
//! parse is then walked completely (every metadata value, array element and
//! tensor slice, and the first values of every tensor through the decoders), and
//! every prefix length must agree with the whole-file parse.
#![no_main]

use gauntlet_engine::gguf::decode::decode_f32;
use gauntlet_engine::gguf::{Gguf, GgufError, GgufHead, Value};
use libfuzzer_sys::fuzz_target;

fn walk(v: &Value<'_>) -> usize {
    match v {
        Value::Array(a) => a.iter().map(|e| 1 + walk(&e)).sum(),
        Value::String(s) => s.len(),
        _ => 1,
    }
}

fuzz_target!(|data: &[u8]| {
    match Gguf::parse(data) {
        Ok(g) => {
            let mut n = 0usize;
            for (_, v) in g.metadata() {
                n += walk(&v);
            }
            for t in g.tensors() {
                assert_eq!(t.data().len() as u64, t.size_bytes());
                n += t.dims().len();
                // Decoding a tensor's own bytes gives values or a typed error.
                let count = t.n_elements().min(4096) as usize;
                if let Ok(values) = decode_f32(t.ggml_type(), t.data(), count) {
                    assert_eq!(values.len(), count);
                }
            }
            std::hint::black_box(n);
            // A prefix that covers the tensor table must parse to the same table.
            let cut = g.tensor_data_offset().min(data.len() as u64) as usize;
            let head = GgufHead::parse(&data[..cut], data.len() as u64).expect("prefix parses");
            assert_eq!(head.tensor_infos(), g.tensor_infos());
        }
        Err(e) => {
            let _ = (e.to_string(), e.help());
            // A prefix parse never contradicts the whole-file verdict.
            let cut = data.len() / 2;
            match GgufHead::parse(&data[..cut], data.len() as u64) {
                Ok(_) => {}
                Err(GgufError::NeedMoreBytes { needed, .. }) => assert!(needed > cut as u64),
                Err(p) => assert_eq!(p.to_string(), e.to_string()),
            }
        }
    }
});
