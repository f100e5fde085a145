//! Ternary (BitNet b1.58) weight formats and CPU/GPU kernels.
//!
//! - [`format`]: TQ1_0, TQ2_0 (llama.cpp) and I2_S (bitnet.cpp), bit-exact with their
//!   reference writers: quantize, dequantize, zero-copy block views, streaming encoders.
//! - [`quant`]: BitNet absmean weight ternarization, int8 absmax activations.
//!
//! ```
//! use gauntlet_kernels::format::TernaryFormat;
//!
//! let x: Vec<f32> = (0..256).map(|i| [-0.5f32, 0.0, 0.5][i % 3]).collect();
//! let bytes = TernaryFormat::Tq2_0.quantize(&x)?;
//! assert_eq!(bytes.len(), 66);
//! assert_eq!(TernaryFormat::Tq2_0.dequantize(&bytes, 256)?, x);
//! # Ok::<(), gauntlet_kernels::FormatError>(())
//! ```

pub mod error;
pub mod format;
pub mod quant;

pub use error::FormatError;
pub use format::TernaryFormat;
