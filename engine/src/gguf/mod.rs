//! GGUF: a validated, zero-copy reader and a streaming writer.
//!
//! [`Gguf::parse`] takes bytes and does no I/O; [`Gguf::open`] maps a file and parses
//! it. Parsing validates everything that later code would otherwise trust (counts,
//! lengths, nesting, UTF-8, duplicate names, shapes, sizes, alignment, tensor ranges)
//! and reports the first problem as a [`GgufError`] naming the byte offset and the
//! key or tensor. Strings and arrays are borrowed from the bytes; arrays are decoded
//! lazily, so opening a file with a 262,144-entry vocabulary allocates nothing per
//! token.
//!
//! A loader that reads through `std::io::Read` rather than a map can parse a prefix
//! with [`GgufHead::parse`]: it fails with [`GgufError::NeedMoreBytes`] until the
//! prefix covers the tensor table ([`OwnedGgufHead::read_from`] does that loop).
//!
//! ```
//! use gauntlet_engine::gguf::{Gguf, GgufBuilder, GgmlType, MetaValue};
//!
//! let mut builder = GgufBuilder::new();
//! builder.metadata("general.architecture", MetaValue::String("llama".into()))?;
//! builder.tensor("norm.weight", &[4], GgmlType::F32)?;
//! let mut writer = builder.start(Vec::new())?;
//! writer.write_data(&[0u8; 16])?;
//! let bytes = writer.finish()?;
//!
//! let gguf = Gguf::parse(&bytes)?;
//! assert_eq!(gguf.get_str("general.architecture")?, "llama");
//! assert_eq!(gguf.tensor("norm.weight").map(|t| t.data().len()), Some(16));
//! # Ok::<(), gauntlet_engine::gguf::GgufError>(())
//! ```

mod cursor;
pub mod decode;
mod error;
mod head;
mod mapped;
mod parse;
mod tensor;
mod types;
mod value;
mod writer;

pub use error::GgufError;
pub use head::{Gguf, GgufHead, OwnedGgufHead};
pub use mapped::MappedGguf;
pub use tensor::{MAX_DIMS, MAX_TENSOR_NAME, Tensor, TensorInfo};
pub use types::{Dialect, GgmlType, Layout, SizeError, TypeIdError};
pub use value::{Array, ArrayIter, Value, ValueType};
pub use writer::{GgufBuilder, GgufWriter, MetaValue};

/// Alignment of the data section and of every tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest `general.alignment` accepted (1 MiB).
pub const MAX_ALIGNMENT: u64 = 1 << 20;
/// Longest string accepted (1 GiB), on top of the bytes actually remaining.
pub const MAX_STRING_LEN: u64 = 1 << 30;
/// Most elements in one array, on top of what the bytes remaining can hold.
pub const MAX_ARRAY_LEN: u64 = 1 << 30;
/// Deepest nesting of arrays inside arrays (1 = a plain array).
pub const MAX_ARRAY_DEPTH: u32 = 8;

#[cfg(test)]
mod tests;
