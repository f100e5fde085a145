//! Typed errors for every fallible kernel entry point.

use thiserror::Error;

use crate::format::TernaryFormat;

/// What went wrong with a format, a shape or an input buffer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FormatError {
    /// A weight count is not a whole number of blocks for the format.
    #[error(
        "{format}: {what} has {len} weights, not a multiple of the {block}-weight block; \
         pad the row or pick a format whose block divides it"
    )]
    NotBlockMultiple {
        /// The format whose block size was violated.
        format: TernaryFormat,
        /// Which quantity was wrong ("row length K", "code chunk", …).
        what: &'static str,
        /// The offending length.
        len: usize,
        /// The block size it must be a multiple of.
        block: usize,
    },
    /// A byte buffer has the wrong length for the number of weights it should hold.
    #[error(
        "{format}: {what} is {actual} bytes but {expected} are needed for {weights} weights; \
         the tensor data is truncated or its shape is wrong"
    )]
    ByteLength {
        /// The format being read.
        format: TernaryFormat,
        /// Which buffer ("tensor data", "row", …).
        what: &'static str,
        /// Bytes present.
        actual: usize,
        /// Bytes required.
        expected: usize,
        /// Weights the buffer should hold.
        weights: usize,
    },
    /// An input value cannot be quantized (NaN or infinite).
    #[error(
        "{format}: input value at index {index} is {value}, which cannot be quantized; remove non-finite values first"
    )]
    NonFinite {
        /// The target format.
        format: TernaryFormat,
        /// Index of the first bad value.
        index: usize,
        /// The value found.
        value: f32,
    },
    /// A ternary code outside {−1, 0, +1}.
    #[error("{format}: code at index {index} is {code}; ternary codes must be -1, 0 or +1")]
    BadCode {
        /// The target format.
        format: TernaryFormat,
        /// Index of the first bad code.
        index: usize,
        /// The code found.
        code: i8,
    },
    /// A shape is too large for exact int32 accumulation or for memory.
    #[error("shape {m}x{k} is too large: {reason}")]
    ShapeTooLarge {
        /// Rows.
        m: usize,
        /// Columns.
        k: usize,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An activation or output buffer does not match the matrix shape.
    #[error("{what}: expected {expected} elements, got {actual}")]
    ShapeMismatch {
        /// Which buffer.
        what: &'static str,
        /// Elements required.
        expected: usize,
        /// Elements present.
        actual: usize,
    },
    /// A GGUF type id that is not one of the ternary formats.
    #[error("GGUF type id {0} is not a ternary format (34 = TQ1_0, 35 = TQ2_0, 36 = I2_S)")]
    UnknownTypeId(u32),
}

/// What went wrong choosing or running a CPU kernel.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum KernelError {
    /// A shape, buffer or format problem.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// `GAUNTLET_KERNEL` (or a caller) asked for a path this CPU cannot run.
    #[error(
        "kernel path `{path}` needs CPU features {missing} that this machine lacks; use one of: {available}"
    )]
    Unsupported {
        /// The requested path.
        path: &'static str,
        /// The missing CPU features.
        missing: &'static str,
        /// The paths that do run here.
        available: String,
    },
    /// `GAUNTLET_KERNEL` holds something that is not a path name.
    #[error("GAUNTLET_KERNEL={value:?} is not a kernel path; accepted: scalar, avx2, avx512")]
    BadOverride {
        /// The value found.
        value: String,
    },
    /// A thread count of zero.
    #[error("thread count must be at least 1")]
    ZeroThreads,
    /// A buffer could not be allocated.
    #[error("could not allocate {bytes} bytes for {what}; free memory or pick a smaller shape")]
    OutOfMemory {
        /// Bytes requested.
        bytes: usize,
        /// What the buffer was for.
        what: &'static str,
    },
    /// The operating system refused a worker thread.
    #[error("could not start a kernel worker thread: {0}; lower the thread count")]
    Spawn(String),
}
