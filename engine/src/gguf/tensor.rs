//! Tensor table entries and zero-copy tensor views.

use std::ops::Deref;

use super::types::GgmlType;

/// Longest tensor name ggml accepts (`GGML_MAX_NAME` minus the terminator).
pub const MAX_TENSOR_NAME: u64 = 64;

/// Most dimensions a ggml tensor has (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;

/// One entry of the tensor table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub(crate) name: String,
    pub(crate) n_dims: u8,
    pub(crate) dims: [u64; 4],
    pub(crate) ggml_type: GgmlType,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) n_elements: u64,
    pub(crate) info_offset: u64,
}

impl TensorInfo {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Dimensions in file order (`ne0` first, the contiguous one).
    pub fn dims(&self) -> &[u64] {
        &self.dims[..usize::from(self.n_dims)]
    }

    /// The element type.
    pub fn ggml_type(&self) -> GgmlType {
        self.ggml_type
    }

    /// Offset of the data relative to the start of the data section.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes of data.
    pub fn size_bytes(&self) -> u64 {
        self.size
    }

    /// Number of elements (the product of the dims; 1 for a 0-dimensional tensor).
    pub fn n_elements(&self) -> u64 {
        self.n_elements
    }

    /// Absolute offset of this entry in the tensor table (for messages).
    pub fn info_offset(&self) -> u64 {
        self.info_offset
    }
}

/// A tensor table entry together with its bytes, borrowed from the file.
#[derive(Debug, Clone, Copy)]
pub struct Tensor<'g, 'a> {
    pub(crate) info: &'g TensorInfo,
    pub(crate) data: &'a [u8],
}

impl<'g, 'a> Tensor<'g, 'a> {
    /// The tensor's data, zero-copy (from the mmap when opened from a path).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The table entry.
    pub fn info(&self) -> &'g TensorInfo {
        self.info
    }
}

impl Deref for Tensor<'_, '_> {
    type Target = TensorInfo;

    fn deref(&self) -> &TensorInfo {
        self.info
    }
}
