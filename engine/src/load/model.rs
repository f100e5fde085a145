//! The loaded model: the parsed index plus every tensor's bytes, mapped or owned.

use std::time::Duration;

use memmap2::{Advice, Mmap, MmapMut};

use super::mode::LoadMode;
use crate::gguf::{GgufHead, OwnedGgufHead, TensorInfo};
use crate::preflight::Preflight;

/// Page-aligned owned memory for the data section in read mode.
///
/// An anonymous mapping rather than a `Vec`: it is aligned to the file's tensor
/// alignment (up to 1 MiB) without over-allocating per tensor, it can ask for huge
/// pages (fewer faults while copying), and dropping it returns the memory to the
/// kernel at once instead of to an allocator's free list.
pub(crate) struct OwnedData {
    map: MmapMut,
    start: usize,
    len: usize,
}

impl OwnedData {
    pub(crate) fn new(len: usize, align: usize) -> std::io::Result<Self> {
        let align = align.max(4096);
        let map = MmapMut::map_anon(len.saturating_add(align).max(1))?;
        // Huge pages are an optimisation the kernel may decline; a refusal changes nothing.
        let _ = map.advise(Advice::HugePage);
        let addr = map.as_ptr() as usize;
        let start = addr.next_multiple_of(align) - addr;
        Ok(OwnedData { map, start, len })
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.map[self.start..self.start + self.len]
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.map[self.start..self.start + self.len]
    }
}

/// Where the tensor bytes live.
pub(crate) enum TensorData {
    /// The whole file, mapped; tensor data starts at `data_offset`.
    Mapped { map: Mmap, data_offset: usize },
    /// The data section copied into owned memory.
    Owned(OwnedData),
    /// A file with no tensor bytes.
    Empty,
}

/// What one load measured.
#[derive(Debug, Clone)]
pub struct LoadStats {
    /// Wall time (or tokio time, for async reader loads) from call to done.
    pub elapsed: Duration,
    /// File length in bytes.
    pub file_bytes: u64,
    /// Sum of tensor byte sizes.
    pub tensor_bytes: u64,
    /// The memory pre-flight, if it ran.
    pub preflight: Option<Preflight>,
}

impl LoadStats {
    /// File bytes per second over the whole load, in GB/s (10^9).
    pub fn gb_per_s(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s == 0.0 {
            0.0
        } else {
            self.file_bytes as f64 / s / 1e9
        }
    }
}

/// A validated model whose tensor bytes are resident: what the registry and kernels use.
pub struct LoadedModel {
    pub(crate) head: OwnedGgufHead,
    pub(crate) data: TensorData,
    pub(crate) mode: LoadMode,
    pub(crate) stats: LoadStats,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("mode", &self.mode)
            .field("tensors", &self.head.head().tensor_infos().len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl LoadedModel {
    /// Metadata and tensor table.
    pub fn head(&self) -> GgufHead<'_> {
        self.head.head()
    }

    /// How the bytes were made resident.
    pub fn mode(&self) -> LoadMode {
        self.mode
    }

    /// What the load measured.
    pub fn stats(&self) -> &LoadStats {
        &self.stats
    }

    /// The data section (every tensor's bytes, with alignment padding).
    pub fn data_section(&self) -> &[u8] {
        match &self.data {
            TensorData::Mapped { map, data_offset } => map.get(*data_offset..).unwrap_or(&[]),
            TensorData::Owned(o) => o.as_slice(),
            TensorData::Empty => &[],
        }
    }

    /// The bytes of one tensor from this model's table.
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        // The parser checked offset + size <= file length for every table entry.
        let (Ok(start), Ok(len)) = (
            usize::try_from(info.offset()),
            usize::try_from(info.size_bytes()),
        ) else {
            return &[];
        };
        self.data_section()
            .get(start..start.saturating_add(len))
            .unwrap_or(&[])
    }

    /// The bytes of the tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&[u8]> {
        let head = self.head.head();
        let info = head.tensor_info(name)?;
        Some(self.tensor_data(info))
    }
}
