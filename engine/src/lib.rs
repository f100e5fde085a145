//! Validated zero-copy GGUF loading with deadlines, progress and cancellation.
//!
//! - [`gguf`]: the reader (parse takes bytes, `open` maps a file), the one ggml type
//!   table, value decoding and a streaming writer; any input yields a typed error.
//! - [`fixture`]: deterministic BitNet b1.58-shaped models written through the writer.
//! - [`preflight`]: will this model fit under the process's cgroup limits?
//! - [`load`]: deadlines, progress events and real cancellation, mmap or read mode.
//! - [`config`]: the loader's settings from `gauntlet.toml` and the environment.
//! - [`registry`]: single-flight loading, access control, maintenance and hot swap.
//! - [`forward`]: a BitNet-shaped forward pass over the ternary kernels.
//!
//! ```
//! use std::time::Duration;
//! use gauntlet_engine::fixture::{FixtureSpec, Preset, WeightFormat};
//! use gauntlet_engine::load::{LoadOptions, Loader};
//!
//! let bytes = FixtureSpec { preset: Preset::Tiny, format: WeightFormat::Tq2_0, seed: 1 }
//!     .write_to(Vec::new())?;
//! let model = Loader::new(LoadOptions::default().timeout(Duration::from_secs(10)))
//!     .load_reader(std::io::Cursor::new(bytes))?;
//! assert!(model.tensor("blk.0.ffn_down.weight").is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod config;
pub mod fixture;
pub mod forward;
pub mod gguf;
pub mod load;
pub mod preflight;
pub mod registry;
