//! Acceptance: a `bitnet-2b4t` fixture cut in half is rejected with an error naming
//! the first tensor whose data runs past the end, with the bytes it needs and the
//! file's size.

use gauntlet_engine::fixture::{Preset, WeightFormat};
use gauntlet_engine::gguf::{Gguf, GgufError, GgufHead};

#[test]
fn bitnet_2b4t_cut_in_half_names_the_first_tensor_past_eof() {
    let Some(path) =
        gauntlet_suites::fixtures::path_or_skip(Preset::Bitnet2b4t, WeightFormat::Tq2_0, 0)
    else {
        return;
    };
    let mapped = Gguf::open(&path).expect("the cached fixture is valid");
    let whole = mapped.gguf();
    let bytes = whole.as_bytes();
    assert!(bytes.len() > 1 << 30, "fixture is {} bytes", bytes.len());
    let half = bytes.len() / 2;

    let mut by_offset: Vec<_> = whole.tensor_infos().iter().collect();
    by_offset.sort_by_key(|t| t.offset());
    let first_past = by_offset
        .iter()
        .find(|t| whole.tensor_data_offset() + t.offset() + t.size_bytes() > half as u64)
        .expect("some tensor lies in the second half");
    let expected_end = whole.tensor_data_offset() + first_past.offset() + first_past.size_bytes();

    // The cut file as a whole file, and as a prefix of a file that is only that long.
    let errors = [
        Gguf::parse(&bytes[..half]).map(drop),
        GgufHead::parse(&bytes[..half], half as u64).map(drop),
    ];
    for err in errors {
        match err {
            Err(GgufError::TensorPastEof {
                tensor,
                end,
                file_len,
                ..
            }) => {
                assert_eq!(tensor, first_past.name());
                assert_eq!(end, expected_end);
                assert_eq!(file_len, half as u64);
            }
            other => panic!("expected TensorPastEof, got {other:?}"),
        }
    }
    let message = Gguf::parse(&bytes[..half])
        .map(drop)
        .expect_err("cut")
        .to_string();
    for part in [
        first_past.name().to_string(),
        expected_end.to_string(),
        half.to_string(),
    ] {
        assert!(message.contains(&part), "{message} lacks {part}");
    }
}
