//! The resident-memory estimate: real tensor sizes plus a documented per-mode overhead.

use crate::load::LoadMode;

/// Allowance for everything that is not file bytes: the parsed index (names, dims,
/// metadata values), loader and runtime thread stacks, and allocator slack. Measured peak
/// for the `bitnet-2b4t` index is a few MiB; 16 MiB keeps the estimate on the safe side
/// without refusing models that fit by a margin that matters.
pub const FIXED_OVERHEAD: u64 = 16 << 20;

/// How many bytes of page table one mapped 4 KiB page costs on x86-64 and aarch64.
const PTE_BYTES_PER_PAGE: u64 = 8;
const PAGE: u64 = 4096;

/// How much memory a load will keep resident, computed from the file's real tensor table.
///
/// The estimate never guesses from a dtype: it sums the byte size of every tensor as the
/// type table computes it (block size × bytes per block), so a 2-bit ternary model is
/// counted at 2 bits per weight, not at the f16 width of its architecture.
///
/// Per mode:
/// - [`LoadMode::Read`]: every byte the loader copies (the header, alignment padding and
///   all tensor data) lives in anonymous memory that cannot be reclaimed without swap, so
///   exceeding the limit means an OOM kill. Overhead = non-tensor bytes + [`FIXED_OVERHEAD`].
/// - [`LoadMode::Mmap`] with populate: the file's pages enter the page cache and are
///   charged to the loading process's memory cgroup. They are clean and reclaimable (the
///   kernel evicts and re-reads instead of killing), but a model whose pages do not stay
///   resident faults on every inference. Overhead = non-tensor bytes + page tables
///   (8 bytes per 4 KiB page) + [`FIXED_OVERHEAD`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidentEstimate {
    /// The mode this estimate is for.
    pub mode: LoadMode,
    /// Sum of the real tensor byte sizes.
    pub tensor_bytes: u64,
    /// Documented per-mode overhead (see the type's doc).
    pub overhead: u64,
}

impl ResidentEstimate {
    /// Builds the estimate from each tensor's byte size and the size of the file's
    /// non-tensor part (header, metadata, tensor index and alignment padding).
    ///
    /// Sums saturate: a hostile table cannot wrap the estimate into a small number.
    pub fn new(
        mode: LoadMode,
        tensor_sizes: impl IntoIterator<Item = u64>,
        non_tensor_bytes: u64,
    ) -> Self {
        let tensor_bytes = tensor_sizes
            .into_iter()
            .fold(0u64, |acc, n| acc.saturating_add(n));
        let mut overhead = non_tensor_bytes.saturating_add(FIXED_OVERHEAD);
        if mode == LoadMode::Mmap {
            let mapped = tensor_bytes.saturating_add(non_tensor_bytes);
            overhead = overhead.saturating_add(mapped.div_ceil(PAGE) * PTE_BYTES_PER_PAGE);
        }
        ResidentEstimate {
            mode,
            tensor_bytes,
            overhead,
        }
    }

    /// Total bytes the load is expected to keep resident.
    pub fn total(&self) -> u64 {
        self.tensor_bytes.saturating_add(self.overhead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_mode_counts_tensors_header_and_fixed_overhead() {
        let e = ResidentEstimate::new(LoadMode::Read, [1000, 2000], 500);
        assert_eq!(e.tensor_bytes, 3000);
        assert_eq!(e.total(), 3000 + 500 + FIXED_OVERHEAD);
    }

    #[test]
    fn mmap_mode_adds_page_tables() {
        let e = ResidentEstimate::new(LoadMode::Mmap, [1 << 30], 0);
        assert_eq!(e.overhead, FIXED_OVERHEAD + (1 << 30) / 4096 * 8);
    }

    #[test]
    fn hostile_sizes_saturate_instead_of_wrapping() {
        let e = ResidentEstimate::new(LoadMode::Read, [u64::MAX, u64::MAX], u64::MAX);
        assert_eq!(e.total(), u64::MAX);
    }
}
