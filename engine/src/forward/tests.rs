//! The pass on the `tiny` fixture: determinism, agreement with an f32 reference built from
//! dequantized weights, steps, cancellation and deadlines.

use gauntlet_kernels::KernelPath;
use rstest::rstest;

use super::*;
use crate::fixture::{FixtureSpec, Preset, WeightFormat};
use crate::load::{LoadOptions, Loader};

fn tiny(format: WeightFormat) -> (tempfile::TempDir, LoadedModel) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.gguf");
    FixtureSpec {
        preset: Preset::Tiny,
        format,
        seed: 3,
    }
    .write_file(&path)
    .expect("fixture");
    let model = Loader::new(LoadOptions::default())
        .load_path(&path)
        .expect("loads");
    (dir, model)
}

fn kernels() -> CpuKernels {
    CpuKernels::new(KernelPath::detect(), 1).expect("kernels")
}

/// The same block math in plain f32 over dequantized weights and quantize-dequantized
/// activations: an independent check that the plan wires every tensor where it belongs.
fn reference(model: &LoadedModel, x: &[f32]) -> Vec<f32> {
    let head = model.head();
    let h = 256;
    let (heads, kv_heads, eps) = (4, 2, 1e-5);
    let w = |name: &str| -> (Vec<f32>, usize, usize) {
        let info = head.tensor_info(name).expect("tensor");
        let (k, m) = (info.dims()[0] as usize, info.dims()[1] as usize);
        let f = TernaryFormat::from_ggml_type_id(info.ggml_type().id()).expect("ternary");
        let v = f
            .dequantize(model.tensor_data(info), k * m)
            .expect("dequantizes");
        (v, k, m)
    };
    let norm = |name: &str| -> Vec<f32> {
        let info = head.tensor_info(name).expect("norm");
        decode_f32(
            info.ggml_type(),
            model.tensor_data(info),
            info.n_elements() as usize,
        )
        .expect("f32")
    };
    let mv = |name: &str, a: &[f32]| -> Vec<f32> {
        let amax = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-5);
        let s = 127.0 / amax;
        let aq: Vec<f32> = a
            .iter()
            .map(|v| (v * s).round_ties_even().clamp(-128.0, 127.0) / s)
            .collect();
        let (wv, k, m) = w(name);
        (0..m)
            .map(|i| (0..k).map(|j| wv[i * k + j] * aq[j]).sum())
            .collect()
    };
    let mut x = x.to_vec();
    for l in 0..2 {
        let b = |s: &str| format!("blk.{l}.{s}");
        let a = rms_norm(&x, &norm(&b("attn_norm.weight")), eps);
        let v = mv(&b("attn_v.weight"), &a);
        let hd = h / heads;
        let attn: Vec<f32> = (0..h)
            .map(|i| v[(i / hd) / (heads / kv_heads) * hd + i % hd])
            .collect();
        let attn = rms_norm(&attn, &norm(&b("attn_sub_norm.weight")), eps);
        let o = mv(&b("attn_output.weight"), &attn);
        x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
        let f = rms_norm(&x, &norm(&b("ffn_norm.weight")), eps);
        let g = mv(&b("ffn_gate.weight"), &f);
        let u = mv(&b("ffn_up.weight"), &f);
        let mid: Vec<f32> = g
            .iter()
            .zip(&u)
            .map(|(g, u)| g.max(0.0).powi(2) * u)
            .collect();
        let mid = rms_norm(&mid, &norm(&b("ffn_sub_norm.weight")), eps);
        let d = mv(&b("ffn_down.weight"), &mid);
        x.iter_mut().zip(&d).for_each(|(a, b)| *a += b);
    }
    rms_norm(&x, &norm("output_norm.weight"), eps)
}

#[rstest]
#[case::tq2_0(WeightFormat::Tq2_0)]
#[case::tq1_0(WeightFormat::Tq1_0)]
#[case::i2_s(WeightFormat::I2S)]
fn matches_f32_reference(#[case] format: WeightFormat) {
    let (_dir, model) = tiny(format);
    let plan = ForwardPlan::new(&model).expect("plan");
    assert_eq!((plan.hidden(), plan.layers()), (256, 2));
    let x = seed_input(11, 256);
    let got = plan
        .run(&kernels(), &x, 1, &Control::default())
        .expect("runs");
    let want = reference(&model, &x);
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.1, "reference output is degenerate: {scale}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= 1e-3 * scale, "[{i}] {g} vs {w}");
    }
}

#[test]
fn same_seed_same_bits_other_seed_differs() {
    let (_dir, model) = tiny(WeightFormat::Tq2_0);
    let plan = ForwardPlan::new(&model).expect("plan");
    let k = kernels();
    let run = |seed| {
        plan.run(&k, &seed_input(seed, 256), 1, &Control::default())
            .expect("runs")
    };
    let (a, b, c) = (run(5), run(5), run(6));
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_ne!(a, c);
}

#[test]
fn steps_feed_the_output_back() {
    let (_dir, model) = tiny(WeightFormat::I2S);
    let plan = ForwardPlan::new(&model).expect("plan");
    let k = kernels();
    let c = Control::default();
    let once = plan.run(&k, &seed_input(1, 256), 1, &c).expect("runs");
    let twice = plan.run(&k, &once, 1, &c).expect("runs");
    assert_eq!(
        plan.run(&k, &seed_input(1, 256), 2, &c).expect("runs"),
        twice
    );
}

#[test]
fn cancelled_or_expired_control_stops_before_the_next_block() {
    let (_dir, model) = tiny(WeightFormat::Tq2_0);
    let plan = ForwardPlan::new(&model).expect("plan");
    let x = seed_input(1, 256);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let c = Control {
        cancel,
        deadline: None,
    };
    assert!(matches!(
        plan.run(&kernels(), &x, 1000, &c),
        Err(ForwardError::Cancelled { step: 0, layer: 0 })
    ));
    let expired = Control::new(CancellationToken::new(), Some(Duration::ZERO));
    assert!(matches!(
        plan.run(&kernels(), &x, 1000, &expired),
        Err(ForwardError::TimedOut { step: 0, layer: 0 })
    ));
    // A deadline that passes mid-run stops a run of a million steps within it.
    let start = Instant::now();
    let soon = Control::new(CancellationToken::new(), Some(Duration::from_millis(20)));
    assert!(matches!(
        plan.run(&kernels(), &x, 1_000_000, &soon),
        Err(ForwardError::TimedOut { .. })
    ));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn bad_input_is_a_typed_error() {
    let (_dir, model) = tiny(WeightFormat::Tq2_0);
    let plan = ForwardPlan::new(&model).expect("plan");
    let c = Control::default();
    assert!(matches!(
        plan.run(&kernels(), &[0.0; 3], 1, &c),
        Err(ForwardError::InputLength {
            expected: 256,
            actual: 3
        })
    ));
    let mut x = vec![0.5; 256];
    x[7] = f32::NAN;
    assert!(matches!(
        plan.run(&kernels(), &x, 1, &c),
        Err(ForwardError::NonFinite { index: 7 })
    ));
}
