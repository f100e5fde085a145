//! Layout facts, known answers, streaming encoders and error cases for the three formats.

use gauntlet_kernels::FormatError;
use gauntlet_kernels::format::{TernaryFormat, i2_s, tq1_0, tq2_0};
use proptest::prelude::*;

#[test]
fn format_table_matches_the_reference_layouts() {
    let rows: Vec<(TernaryFormat, u32, usize, usize)> = TernaryFormat::ALL
        .iter()
        .map(|f| (*f, f.ggml_type_id(), f.block_weights(), f.block_bytes()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (TernaryFormat::Tq1_0, 34, 256, 54),
            (TernaryFormat::Tq2_0, 35, 256, 66),
            (TernaryFormat::I2S, 36, 128, 32),
        ]
    );
    for f in TernaryFormat::ALL {
        assert_eq!(TernaryFormat::from_ggml_type_id(f.ggml_type_id()), Ok(f));
    }
    assert_eq!(
        TernaryFormat::from_ggml_type_id(2),
        Err(FormatError::UnknownTypeId(2))
    );
    assert_eq!(
        TernaryFormat::I2S.tensor_bytes(2560 * 2560),
        Ok(2560 * 2560 / 4 + 32)
    );
    assert_eq!(TernaryFormat::Tq2_0.tensor_bytes(512), Ok(132));
}

/// Codes for 128 weights, all zero except the listed (index, code) pairs.
fn sparse_codes(n: usize, set: &[(usize, i8)]) -> Vec<i8> {
    let mut codes = vec![0i8; n];
    for &(i, c) in set {
        codes[i] = c;
    }
    codes
}

#[test]
fn i2_s_x86_known_answer() {
    // All-zero codes are 1 in every 2-bit field: 0b01_01_01_01.
    // Weight 0 (+1) is byte 0 at shift 6; weight 97 (−1) byte 1 at shift 0;
    // weight 63 (+1) byte 31 at shift 4; weight 160 (−1) is block 1, byte 0, shift 4.
    let codes = sparse_codes(256, &[(0, 1), (97, -1), (63, 1), (160, -1)]);
    let mut bytes = Vec::new();
    i2_s::encode_codes(&codes, &mut bytes).expect("encode");
    let mut expected = vec![0x55u8; 64];
    expected[0] = 0x95;
    expected[1] = 0x54;
    expected[31] = 0x65;
    expected[32] = 0x45;
    assert_eq!(bytes, expected);

    bytes.extend_from_slice(&i2_s::scale_trailer(0.25));
    assert_eq!(bytes.len(), 256 / 4 + 32);
    assert_eq!(&bytes[64..68], &0.25f32.to_le_bytes());
    assert!(bytes[68..].iter().all(|&b| b == 0));
    let values = TernaryFormat::I2S.dequantize(&bytes, 256).expect("decode");
    let expected_values: Vec<f32> = codes.iter().map(|&c| f32::from(c) * 0.25).collect();
    assert_eq!(values, expected_values);
    let block0 = i2_s::blocks(&bytes[..64])
        .expect("view")
        .next()
        .expect("one block");
    assert_eq!(
        (block0.code(0), block0.code(97), block0.code(1)),
        (1, -1, 0)
    );
}

#[test]
fn i2_s_arm_layout_decodes_64_weight_blocks() {
    // ARM: weight j of a 64-block at byte j % 16, shift 6 − 2·(j / 16).
    let mut tensor = vec![0x55u8; 32];
    tensor[1] = 0x65; // weight 17 = +1 (byte 1, shift 4)
    tensor[16 + 15] = 0x54; // block 1, weight 63 = −1 (byte 15, shift 0)
    tensor.extend_from_slice(&i2_s::scale_trailer(2.0));
    let values = i2_s::dequantize_with_layout(&tensor, 128, i2_s::I2sLayout::Arm).expect("decode");
    let mut expected = vec![0.0f32; 128];
    expected[17] = 2.0;
    expected[64 + 63] = -2.0;
    assert_eq!(values, expected);

    let codes = sparse_codes(128, &[(17, 1), (127, -1)]);
    let mut encoded = Vec::new();
    i2_s::encode_codes_with_layout(&codes, i2_s::I2sLayout::Arm, &mut encoded).expect("encode");
    assert_eq!(encoded, tensor[..32]);
}

#[test]
fn i2_s_quantize_follows_bitnet_sign_rule() {
    let mut x = vec![0.0f32; 128];
    x[0] = 0.5;
    x[1] = -0.5;
    x[2] = 5e-7; // below bitnet.cpp's 1e-6 zero threshold
    let bytes = i2_s::quantize(&x).expect("quantize");
    assert_eq!(i2_s::read_scale(&bytes, 128), Ok(0.5));
    let back = i2_s::dequantize(&bytes, 128).expect("decode");
    assert_eq!(&back[..4], &[0.5, -0.5, 0.0, 0.0]);
}

#[test]
fn tq_encoders_match_the_quantizers_on_ternary_input() {
    let codes: Vec<i8> = (0..512).map(|i| ((i * 7 + i / 3) % 3) as i8 - 1).collect();
    let scale = 0.375f32; // exact in f16
    let x: Vec<f32> = codes.iter().map(|&c| f32::from(c) * scale).collect();
    for f in [TernaryFormat::Tq1_0, TernaryFormat::Tq2_0] {
        let mut streamed = Vec::new();
        f.encode_codes(&codes[..256], scale, &mut streamed)
            .expect("chunk 1");
        f.encode_codes(&codes[256..], scale, &mut streamed)
            .expect("chunk 2");
        assert_eq!(streamed, f.quantize(&x).expect("quantize"), "{f}");
        assert_eq!(f.dequantize(&streamed, 512).expect("decode"), x, "{f}");
    }
}

#[test]
fn block_views_read_codes_and_scales_in_place() {
    let codes: Vec<i8> = (0..256).map(|i| (i % 3) as i8 - 1).collect();
    let mut b2 = Vec::new();
    tq2_0::encode_codes(&codes, 1.5, &mut b2).expect("tq2");
    let view = tq2_0::blocks(&b2).expect("view").next().expect("block");
    assert_eq!(view.d().to_f32(), 1.5);
    assert!((0..256).all(|j| view.code(j) == codes[j]));
    let mut b1 = Vec::new();
    tq1_0::encode_codes(&codes, 1.5, &mut b1).expect("tq1");
    let view = tq1_0::blocks(&b1).expect("view").next().expect("block");
    assert_eq!(
        (view.qs().len(), view.qh().len(), view.d().to_f32()),
        (48, 4, 1.5)
    );
    assert!((0..256).all(|j| view.code(j) == codes[j]));
}

#[test]
fn bad_inputs_are_typed_errors() {
    type Case = (
        &'static str,
        Result<Vec<u8>, FormatError>,
        fn(&FormatError) -> bool,
    );
    let cases: Vec<Case> = vec![
        (
            "tq2 input not a block multiple",
            TernaryFormat::Tq2_0.quantize(&[0.0; 100]),
            |e| {
                matches!(
                    e,
                    FormatError::NotBlockMultiple {
                        len: 100,
                        block: 256,
                        ..
                    }
                )
            },
        ),
        (
            "i2_s input not a block multiple",
            TernaryFormat::I2S.quantize(&[0.0; 64]),
            |e| {
                matches!(
                    e,
                    FormatError::NotBlockMultiple {
                        len: 64,
                        block: 128,
                        ..
                    }
                )
            },
        ),
        (
            "NaN input",
            TernaryFormat::Tq1_0.quantize(&[f32::NAN; 256]),
            |e| matches!(e, FormatError::NonFinite { index: 0, .. }),
        ),
        (
            "code 2",
            {
                let mut v = Vec::new();
                let mut codes = vec![0i8; 256];
                codes[9] = 2;
                TernaryFormat::Tq2_0
                    .encode_codes(&codes, 1.0, &mut v)
                    .map(|_| v)
            },
            |e| {
                matches!(
                    e,
                    FormatError::BadCode {
                        index: 9,
                        code: 2,
                        ..
                    }
                )
            },
        ),
    ];
    for (name, result, expected) in cases {
        let err = result.expect_err(name);
        assert!(expected(&err), "{name}: got {err}");
    }
    let truncated = TernaryFormat::Tq2_0
        .dequantize(&[0u8; 65], 256)
        .expect_err("short");
    assert!(
        matches!(
            truncated,
            FormatError::ByteLength {
                actual: 65,
                expected: 66,
                ..
            }
        ),
        "{truncated}"
    );
    let no_trailer = TernaryFormat::I2S
        .dequantize(&[0u8; 32], 128)
        .expect_err("no trailer");
    assert!(
        no_trailer.to_string().contains("64 are needed"),
        "{no_trailer}"
    );
}

proptest! {
    #[test]
    fn ternary_values_round_trip_exactly(codes in prop::collection::vec(-1i8..=1, 256..=256), blocks in 1usize..4, scale_bits in 0x3000u16..0x5000) {
        let scale = half::f16::from_bits(scale_bits).to_f32();
        let codes: Vec<i8> = codes.iter().cycle().take(256 * blocks).copied().collect();
        let mut x: Vec<f32> = codes.iter().map(|&c| f32::from(c) * scale).collect();
        // Give every block its full scale so absmax quantizers see exactly `scale`.
        for b in 0..blocks { x[b * 256] = scale; }
        for f in TernaryFormat::ALL {
            let bytes = f.quantize(&x).expect("quantize");
            prop_assert_eq!(bytes.len(), f.tensor_bytes(x.len()).expect("size"));
            prop_assert_eq!(f.dequantize(&bytes, x.len()).expect("decode"), x.clone(), "{}", f);
        }
    }
}
