//! Ternary (BitNet b1.58) weight formats and CPU/GPU kernels.
//!
//! - [`format`](mod@format): TQ1_0, TQ2_0 (llama.cpp) and I2_S (bitnet.cpp), bit-exact with their
//!   reference writers: quantize, dequantize, zero-copy block views, streaming encoders.
//! - [`quant`]: BitNet absmean weight ternarization, int8 absmax activations.
//! - [`matrix`] + [`cpu`]: a zero-copy ternary matrix view and GEMV/GEMM on scalar,
//!   AVX2 or AVX-512 VNNI (override with `GAUNTLET_KERNEL`), split across threads.
//! - [`gpu`]: CUDA GEMV (feature `gpu`) with a bounded, panic-free init; [`gpu::Backend::best`]
//!   falls back to the CPU and says why.
//! - [`roofline`]: cold (>1 GiB rotation) timings against streaming-read bandwidth.
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
//!
//! A GEMV over borrowed bytes (an mmap in practice), on the fastest path this CPU runs:
//!
//! ```
//! use gauntlet_kernels::quant::QuantizedActivations;
//! use gauntlet_kernels::{CpuKernels, KernelPath, TernaryFormat, TernaryMatrix};
//!
//! let (m, k) = (4, 256);
//! let bytes = TernaryFormat::I2S.quantize(&vec![0.5f32; m * k])?;
//! let w = TernaryMatrix::new(TernaryFormat::I2S, m, k, &bytes)?;
//! let x = QuantizedActivations::quantize(&vec![1.0f32; k], 1, k)?;
//! let mut y = vec![0.0f32; m];
//! CpuKernels::new(KernelPath::detect(), 2)?.gemv(&w, &x, &mut y)?;
//! assert_eq!(y, vec![128.0; m]); // 256 weights of 0.5 times activations of 1.0
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cpu;
pub mod error;
pub mod format;
pub mod gpu;
pub mod matrix;
pub mod quant;
pub mod roofline;

pub use cpu::{CpuKernels, KernelPath};
pub use error::{FormatError, KernelError};
pub use format::TernaryFormat;
pub use matrix::TernaryMatrix;
