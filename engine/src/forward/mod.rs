//! A BitNet b1.58-shaped forward pass over a loaded model, on the ternary kernels.
//!
//! Per block: RMSNorm → q/k/v projections → attention → `attn_sub_norm` → output
//! projection → residual; RMSNorm → gate and up projections → squared ReLU(gate) · up →
//! `ffn_sub_norm` → down projection → residual. Every projection is a GEMV on
//! [`gauntlet_kernels::CpuKernels`] over the tensor's bytes in place (no copy), with the
//! activations quantized to int8 (absmax) first, as BitNet does.
//!
//! Simplification, on purpose: the pass processes one token at position 0 and keeps no KV
//! cache. With a single key, softmax gives it weight 1 and RoPE at position 0 is the
//! identity, so attention's output is exactly the value vector repeated across each
//! grouped-query head group; q and k are still computed (their GEMVs are real work) but
//! cannot change the result. There is no token embedding lookup and no vocabulary
//! projection: the input is a hidden-width vector and the output is the final
//! `output_norm` of the residual stream. `steps` feeds the output back as the next input,
//! which gives a caller a knob for how long a request computes.
//!
//! Cancellation is cooperative: [`Control`] is checked before every block, so a cancel or
//! a passed deadline stops the pass within one block's work.
//!
//! ```no_run
//! use gauntlet_engine::forward::{Control, ForwardPlan, seed_input};
//! use gauntlet_engine::load::{LoadOptions, Loader};
//! use gauntlet_kernels::{CpuKernels, KernelPath};
//!
//! let model = Loader::new(LoadOptions::default()).load_path("tiny.gguf")?;
//! let plan = ForwardPlan::new(&model)?;
//! let kernels = CpuKernels::new(KernelPath::detect(), 1)?;
//! let out = plan.run(&kernels, &seed_input(7, plan.hidden()), 1, &Control::default())?;
//! assert_eq!(out.len(), plan.hidden());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use gauntlet_kernels::quant::QuantizedActivations;
use gauntlet_kernels::{CpuKernels, FormatError, KernelError, TernaryFormat, TernaryMatrix};
use tokio_util::sync::CancellationToken;

use crate::gguf::decode::decode_f32;
use crate::gguf::{GgmlType, GgufHead};
use crate::load::LoadedModel;

/// The architecture prefix of metadata keys when `general.architecture` is missing.
const DEFAULT_ARCH: &str = "bitnet-b1.58";
/// RMSNorm epsilon when the file does not say.
const DEFAULT_EPS: f32 = 1e-5;
/// More blocks than this is not a model this pass was written for; refuse instead of
/// allocating per-block state from a hostile count.
const MAX_LAYERS: u64 = 4096;

/// Why a forward pass could not be planned or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// A metadata key the pass needs is missing or has the wrong type.
    #[error(
        "model metadata {key:?}: {reason}; the file is not a BitNet b1.58 model this pass can run"
    )]
    Metadata {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor the pass needs is absent.
    #[error("tensor {name:?} is missing; the file is not a BitNet b1.58 model this pass can run")]
    MissingTensor {
        /// The tensor name.
        name: String,
    },
    /// A tensor's shape or type is not what the block structure needs.
    #[error("tensor {name:?}: {reason}")]
    BadTensor {
        /// The tensor name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The input vector does not have the model's hidden width.
    #[error("input has {actual} values but the model's hidden width is {expected}")]
    InputLength {
        /// The hidden width.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// The input holds NaN or infinity.
    #[error("input value at index {index} is not finite")]
    NonFinite {
        /// The first bad index.
        index: usize,
    },
    /// A kernel refused (shape or format problem in the tensor bytes).
    #[error("kernel failed on tensor {name:?}: {source}")]
    Kernel {
        /// The tensor name.
        name: String,
        /// The kernel's error.
        source: KernelError,
    },
    /// The cancellation token fired.
    #[error("forward pass cancelled before step {step}, block {layer}")]
    Cancelled {
        /// The step (0-based) that was running.
        step: u32,
        /// The block (0-based) about to run.
        layer: usize,
    },
    /// The deadline passed.
    #[error("forward pass passed its deadline before step {step}, block {layer}")]
    TimedOut {
        /// The step (0-based) that was running.
        step: u32,
        /// The block (0-based) about to run.
        layer: usize,
    },
}

/// When a running pass must stop: a token, a deadline, or both.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Stops the pass at its next check when cancelled.
    pub cancel: CancellationToken,
    /// Stops the pass at its next check once passed.
    pub deadline: Option<Instant>,
}

impl Control {
    /// A control that stops at `cancel` or `timeout` from now.
    pub fn new(cancel: CancellationToken, timeout: Option<Duration>) -> Self {
        Control {
            cancel,
            deadline: timeout.map(|t| Instant::now() + t),
        }
    }

    fn check(&self, step: u32, layer: usize) -> Result<(), ForwardError> {
        if self.cancel.is_cancelled() {
            return Err(ForwardError::Cancelled { step, layer });
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(ForwardError::TimedOut { step, layer });
        }
        Ok(())
    }
}

/// One ternary projection: its name (for errors) and its zero-copy view.
struct Proj<'m> {
    name: String,
    w: TernaryMatrix<'m>,
}

/// One transformer block's weights.
struct Block<'m> {
    attn_norm: Vec<f32>,
    q: Proj<'m>,
    k: Proj<'m>,
    v: Proj<'m>,
    attn_sub_norm: Vec<f32>,
    o: Proj<'m>,
    ffn_norm: Vec<f32>,
    gate: Proj<'m>,
    up: Proj<'m>,
    ffn_sub_norm: Vec<f32>,
    down: Proj<'m>,
}

/// A model's blocks resolved and validated once, borrowing the model's tensor bytes.
pub struct ForwardPlan<'m> {
    hidden: usize,
    ffn: usize,
    heads: usize,
    kv_heads: usize,
    eps: f32,
    blocks: Vec<Block<'m>>,
    output_norm: Vec<f32>,
}

impl std::fmt::Debug for ForwardPlan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardPlan")
            .field("hidden", &self.hidden)
            .field("ffn", &self.ffn)
            .field("heads", &self.heads)
            .field("kv_heads", &self.kv_heads)
            .field("blocks", &self.blocks.len())
            .finish_non_exhaustive()
    }
}

fn meta_u64(head: &GgufHead<'_>, key: &str) -> Result<u64, ForwardError> {
    let bad = |reason: String| ForwardError::Metadata {
        key: key.to_string(),
        reason,
    };
    match head.get_u32(key) {
        Ok(v) => Ok(u64::from(v)),
        Err(_) => head.get_u64(key).map_err(|e| bad(e.to_string())),
    }
}

fn usize_of(v: u64, key: &str) -> Result<usize, ForwardError> {
    usize::try_from(v).map_err(|_| ForwardError::Metadata {
        key: key.to_string(),
        reason: format!("{v} does not fit in memory"),
    })
}

impl<'m> ForwardPlan<'m> {
    /// Resolves every tensor the pass needs and checks its type and shape against the
    /// metadata. Norm weights are decoded to f32 here (a few KiB); ternary tensors stay
    /// in place.
    pub fn new(model: &'m LoadedModel) -> Result<Self, ForwardError> {
        let head = model.head();
        let arch = head.architecture().unwrap_or(DEFAULT_ARCH).to_string();
        let key = |k: &str| format!("{arch}.{k}");
        let n_layers = meta_u64(&head, &key("block_count"))?;
        if n_layers == 0 || n_layers > MAX_LAYERS {
            return Err(ForwardError::Metadata {
                key: key("block_count"),
                reason: format!("{n_layers} blocks is outside 1..={MAX_LAYERS}"),
            });
        }
        let hidden = usize_of(
            meta_u64(&head, &key("embedding_length"))?,
            "embedding_length",
        )?;
        let ffn = usize_of(
            meta_u64(&head, &key("feed_forward_length"))?,
            "feed_forward_length",
        )?;
        let heads = usize_of(
            meta_u64(&head, &key("attention.head_count"))?,
            "attention.head_count",
        )?;
        let kv_heads = usize_of(
            meta_u64(&head, &key("attention.head_count_kv"))?,
            "attention.head_count_kv",
        )?;
        if heads == 0 || kv_heads == 0 || hidden % heads != 0 || heads % kv_heads != 0 {
            return Err(ForwardError::Metadata {
                key: key("attention.head_count"),
                reason: format!(
                    "{heads} heads / {kv_heads} kv heads do not divide hidden width {hidden}"
                ),
            });
        }
        let eps = head
            .get_f32(&key("attention.layer_norm_rms_epsilon"))
            .unwrap_or(DEFAULT_EPS);
        let kv = hidden / heads * kv_heads;

        let norm = |name: &str, len: usize| -> Result<Vec<f32>, ForwardError> {
            let info = head
                .tensor_info(name)
                .ok_or_else(|| ForwardError::MissingTensor { name: name.into() })?;
            let bad = |reason: String| ForwardError::BadTensor {
                name: name.into(),
                reason,
            };
            if info.n_elements() != len as u64 {
                return Err(bad(format!(
                    "{} elements, expected {len}",
                    info.n_elements()
                )));
            }
            if !matches!(info.ggml_type(), GgmlType::F32 | GgmlType::F16) {
                return Err(bad(format!(
                    "type {} is not F32 or F16",
                    info.ggml_type().name()
                )));
            }
            decode_f32(info.ggml_type(), model.tensor_data(info), len)
                .map_err(|e| bad(e.to_string()))
        };
        let proj = |name: String, k: usize, m: usize| -> Result<Proj<'m>, ForwardError> {
            let info = head
                .tensor_info(&name)
                .ok_or_else(|| ForwardError::MissingTensor { name: name.clone() })?;
            let bad = |reason: String| ForwardError::BadTensor {
                name: name.clone(),
                reason,
            };
            if info.dims() != [k as u64, m as u64] {
                return Err(bad(format!("dims {:?}, expected [{k}, {m}]", info.dims())));
            }
            let format = TernaryFormat::from_ggml_type_id(info.ggml_type().id())
                .map_err(|e: FormatError| bad(e.to_string()))?;
            let w = TernaryMatrix::new(format, m, k, model.tensor_data(info))
                .map_err(|e| bad(e.to_string()))?;
            Ok(Proj { name, w })
        };

        let mut blocks = Vec::new();
        for i in 0..n_layers {
            let b = |s: &str| format!("blk.{i}.{s}");
            blocks.push(Block {
                attn_norm: norm(&b("attn_norm.weight"), hidden)?,
                q: proj(b("attn_q.weight"), hidden, hidden)?,
                k: proj(b("attn_k.weight"), hidden, kv)?,
                v: proj(b("attn_v.weight"), hidden, kv)?,
                attn_sub_norm: norm(&b("attn_sub_norm.weight"), hidden)?,
                o: proj(b("attn_output.weight"), hidden, hidden)?,
                ffn_norm: norm(&b("ffn_norm.weight"), hidden)?,
                gate: proj(b("ffn_gate.weight"), hidden, ffn)?,
                up: proj(b("ffn_up.weight"), hidden, ffn)?,
                ffn_sub_norm: norm(&b("ffn_sub_norm.weight"), ffn)?,
                down: proj(b("ffn_down.weight"), ffn, hidden)?,
            });
        }
        let output_norm = norm("output_norm.weight", hidden)?;
        Ok(ForwardPlan {
            hidden,
            ffn,
            heads,
            kv_heads,
            eps,
            blocks,
            output_norm,
        })
    }

    /// The hidden (residual stream) width: the input and output length.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Transformer blocks.
    pub fn layers(&self) -> usize {
        self.blocks.len()
    }

    /// Ternary weight bytes one pass reads.
    pub fn weight_bytes_per_pass(&self) -> usize {
        self.blocks
            .iter()
            .flat_map(|b| [&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down])
            .map(|p| p.w.weight_bytes())
            .sum()
    }

    /// Runs `steps` passes (at least one), feeding each output back in, checking
    /// `control` before every block. Returns the last pass's output.
    pub fn run(
        &self,
        kernels: &CpuKernels,
        input: &[f32],
        steps: u32,
        control: &Control,
    ) -> Result<Vec<f32>, ForwardError> {
        if input.len() != self.hidden {
            return Err(ForwardError::InputLength {
                expected: self.hidden,
                actual: input.len(),
            });
        }
        if let Some(index) = input.iter().position(|v| !v.is_finite()) {
            return Err(ForwardError::NonFinite { index });
        }
        let mut x = input.to_vec();
        for step in 0..steps.max(1) {
            for (layer, block) in self.blocks.iter().enumerate() {
                control.check(step, layer)?;
                self.block(kernels, block, &mut x)?;
            }
            x = rms_norm(&x, &self.output_norm, self.eps);
        }
        Ok(x)
    }

    fn block(
        &self,
        kernels: &CpuKernels,
        b: &Block<'_>,
        x: &mut [f32],
    ) -> Result<(), ForwardError> {
        let a = rms_norm(x, &b.attn_norm, self.eps);
        let qa = quantize(&a)?;
        // q and k cannot change a one-token result (softmax over one key is 1), but they
        // are computed so a pass costs what a real one does.
        let _q = gemv(kernels, &b.q, &qa)?;
        let _k = gemv(kernels, &b.k, &qa)?;
        let v = gemv(kernels, &b.v, &qa)?;
        let head_dim = self.hidden / self.heads;
        let group = self.heads / self.kv_heads;
        let mut attn = vec![0.0f32; self.hidden];
        for (h, out) in attn.chunks_exact_mut(head_dim).enumerate() {
            let kv_head = h / group;
            out.copy_from_slice(&v[kv_head * head_dim..(kv_head + 1) * head_dim]);
        }
        let attn = rms_norm(&attn, &b.attn_sub_norm, self.eps);
        let o = gemv(kernels, &b.o, &quantize(&attn)?)?;
        for (xi, oi) in x.iter_mut().zip(&o) {
            *xi += oi;
        }

        let f = rms_norm(x, &b.ffn_norm, self.eps);
        let qf = quantize(&f)?;
        let gate = gemv(kernels, &b.gate, &qf)?;
        let up = gemv(kernels, &b.up, &qf)?;
        let mid: Vec<f32> = gate
            .iter()
            .zip(&up)
            .map(|(g, u)| {
                let r = g.max(0.0);
                r * r * u
            })
            .collect();
        debug_assert_eq!(mid.len(), self.ffn);
        let mid = rms_norm(&mid, &b.ffn_sub_norm, self.eps);
        let d = gemv(kernels, &b.down, &quantize(&mid)?)?;
        for (xi, di) in x.iter_mut().zip(&d) {
            *xi += di;
        }
        Ok(())
    }
}

fn quantize(x: &[f32]) -> Result<QuantizedActivations, ForwardError> {
    QuantizedActivations::quantize(x, 1, x.len()).map_err(|e| ForwardError::Kernel {
        name: "activations".into(),
        source: e.into(),
    })
}

fn gemv(
    kernels: &CpuKernels,
    p: &Proj<'_>,
    x: &QuantizedActivations,
) -> Result<Vec<f32>, ForwardError> {
    let mut y = vec![0.0f32; p.w.m()];
    kernels
        .gemv(&p.w, x, &mut y)
        .map_err(|source| ForwardError::Kernel {
            name: p.name.clone(),
            source,
        })?;
    Ok(y)
}

/// `x / rms(x) · w`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let mean_sq = x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32;
    let inv = 1.0 / (mean_sq + eps).sqrt();
    x.iter().zip(w).map(|(v, w)| v * inv * w).collect()
}

/// A deterministic input vector of length `len` from `seed` (SplitMix64, values in
/// −1..1), so a request can name its input by a number.
pub fn seed_input(seed: u64, len: usize) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}
