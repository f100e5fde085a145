//! Quantization recipes: BitNet b1.58 absmean ternarization for weights, and int8
//! absmax-per-row for activations with the per-chunk sums the kernels subtract.
//!
//! The kernels multiply unsigned weight codes `c = w + 1 ∈ {0, 1, 2}` by int8
//! activations and recover the ternary dot as `Σ c·a − Σ a`, so each activation row
//! carries its sum over every 256-weight chunk (a 128-weight tail chunk for I2_S rows
//! whose length is an odd multiple of 128), like llama.cpp's Q8_K `bsums`.

use crate::error::FormatError;

/// Weights per activation chunk: every format's block divides it or equals half of it.
pub const CHUNK: usize = 256;

/// BitNet b1.58's weight recipe: scale = mean |w| (at least 1e-5), code = round(w / scale)
/// clamped to −1..=1 (ties to even, as `torch.round`). Returns the codes and the scale
/// such that `w ≈ code · scale`.
pub fn absmean_ternary(w: &[f32]) -> (Vec<i8>, f32) {
    if w.is_empty() {
        return (Vec::new(), 0.0);
    }
    let mean = (w.iter().map(|v| f64::from(v.abs())).sum::<f64>() / w.len() as f64) as f32;
    let scale = mean.max(1e-5);
    let inv = 1.0 / scale;
    let codes = w
        .iter()
        .map(|&v| {
            let q = (v * inv).round_ties_even();
            // NaN compares false on both sides and lands on 0.
            if q >= 1.0 {
                1
            } else if q <= -1.0 {
                -1
            } else {
                0
            }
        })
        .collect();
    (codes, scale)
}

/// `n` activation rows of length `k`, quantized to int8 with one scale per row.
#[derive(Debug, Clone)]
pub struct QuantizedActivations {
    k: usize,
    n: usize,
    values: Vec<i8>,
    inv_scales: Vec<f32>,
    chunk_sums: Vec<i32>,
}

impl QuantizedActivations {
    /// Quantizes `x` (`n` rows of `k` values, row-major) with BitNet's activation recipe:
    /// per row `s = 127 / max(absmax, 1e-5)`, `q = round(x · s)` clamped to −128..=127.
    pub fn quantize(x: &[f32], n: usize, k: usize) -> Result<Self, FormatError> {
        let expected = n.checked_mul(k).ok_or(FormatError::ShapeTooLarge {
            m: n,
            k,
            reason: "n × k overflows",
        })?;
        if x.len() != expected {
            return Err(FormatError::ShapeMismatch {
                what: "activations (n × k f32)",
                expected,
                actual: x.len(),
            });
        }
        let mut values = Vec::with_capacity(expected);
        let mut inv_scales = Vec::with_capacity(n);
        for row in x.chunks_exact(k.max(1)).take(n) {
            let amax = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let s = 127.0 / amax.max(1e-5);
            values.extend(
                row.iter()
                    .map(|&v| (v * s).round_ties_even().clamp(-128.0, 127.0) as i8),
            );
            inv_scales.push(1.0 / s);
        }
        Self::from_parts(values, inv_scales, n, k)
    }

    /// Wraps already-quantized int8 rows; `inv_scales[r]` converts row `r` back to real
    /// units (x ≈ q · inv_scale).
    pub fn from_parts(
        values: Vec<i8>,
        inv_scales: Vec<f32>,
        n: usize,
        k: usize,
    ) -> Result<Self, FormatError> {
        let expected = n.checked_mul(k).ok_or(FormatError::ShapeTooLarge {
            m: n,
            k,
            reason: "n × k overflows",
        })?;
        if values.len() != expected {
            return Err(FormatError::ShapeMismatch {
                what: "activation values (n × k)",
                expected,
                actual: values.len(),
            });
        }
        if inv_scales.len() != n {
            return Err(FormatError::ShapeMismatch {
                what: "activation scales (n)",
                expected: n,
                actual: inv_scales.len(),
            });
        }
        let chunks = k.div_ceil(CHUNK);
        let mut chunk_sums = Vec::with_capacity(n * chunks);
        for row in values.chunks_exact(k.max(1)).take(n) {
            chunk_sums.extend(
                row.chunks(CHUNK)
                    .map(|c| c.iter().map(|&v| i32::from(v)).sum::<i32>()),
            );
        }
        Ok(Self {
            k,
            n,
            values,
            inv_scales,
            chunk_sums,
        })
    }

    /// Row length.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of rows.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Row `r`'s int8 values.
    pub fn row(&self, r: usize) -> &[i8] {
        &self.values[r * self.k..(r + 1) * self.k]
    }

    /// Row `r`'s dequantization factor.
    pub fn inv_scale(&self, r: usize) -> f32 {
        self.inv_scales[r]
    }

    /// Row `r`'s sums over each 256-weight chunk (the last may be shorter).
    pub fn chunk_sums(&self, r: usize) -> &[i32] {
        let c = self.k.div_ceil(CHUNK);
        &self.chunk_sums[r * c..(r + 1) * c]
    }
}
