//! The one table of ggml tensor types: id, name, block size and bytes per block.
//!
//! Every other place (reader, writer, decoder, `gauntlet inspect`) reads sizes from
//! here. Ids come from llama.cpp's `ggml.h` / gguf-py `constants.py` (mainline) and
//! from microsoft/BitNet's llama.cpp fork (the BitNet dialect).
//!
//! # Dialects
//!
//! Ids 36-39 mean different things in the two lineages: mainline removed 36-38
//! (IQ4_NL_4_4 …) and uses 39 for MXFP4; the BitNet fork uses 36 I2_S, 37 I8_S,
//! 38 TL1 and 39 TL2. A file carries no explicit dialect marker, so the rule is:
//! **a file is read in the BitNet dialect when its `general.architecture` string
//! starts with `bitnet`** (the fork's converter writes `bitnet`, `bitnet-b1.58` or
//! `bitnet-25`), otherwise in the mainline dialect. Ids below 36 and above 39
//! mean the same in both, so mainline `bitnet` files with TQ1_0/TQ2_0 read the same
//! either way; the only file this misreads is a mainline `bitnet…` model with MXFP4
//! tensors, which no converter produces.

use std::fmt;

/// Which lineage's meaning of the clashing type ids 36-39 a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// llama.cpp / ggml mainline.
    Mainline,
    /// microsoft/BitNet's llama.cpp fork (I2_S, I8_S, TL1, TL2).
    BitNet,
}

impl Dialect {
    /// Applies the rule in the module docs to a file's `general.architecture`.
    pub fn from_architecture(arch: Option<&str>) -> Self {
        match arch {
            Some(a) if a.starts_with("bitnet") => Dialect::BitNet,
            _ => Dialect::Mainline,
        }
    }

    /// Lower-case name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Mainline => "mainline",
            Dialect::BitNet => "BitNet-fork",
        }
    }
}

/// How a type's byte size follows from its element count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `n / block_size` blocks of `type_size` bytes each.
    Blocks,
    /// BitNet's I2_S: four 2-bit codes per byte, then a 32-byte trailer for the whole
    /// tensor holding its scale (`n / 4 + 32`).
    PerTensorTrailer {
        /// Bytes after the packed codes.
        trailer: u64,
    },
}

macro_rules! ggml_types {
    ($( $variant:ident = ($id:expr, $name:expr, $block:expr, $size:expr, $layout:expr) ),* $(,)?) => {
        /// A ggml tensor type. Convert from a file's id with [`GgmlType::from_id`].
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum GgmlType {
            $(
                #[doc = concat!("`", $name, "` (id ", stringify!($id), ").")]
                $variant,
            )*
        }

        impl GgmlType {
            /// Every type in the table, mainline first, then the BitNet dialect.
            pub const ALL: &'static [GgmlType] = &[$(GgmlType::$variant),*];

            /// The id stored in GGUF files.
            pub const fn id(self) -> u32 {
                match self { $(GgmlType::$variant => $id),* }
            }

            /// The upper-case ggml name, e.g. `"TQ2_0"`.
            pub const fn name(self) -> &'static str {
                match self { $(GgmlType::$variant => $name),* }
            }

            /// Elements per block.
            pub const fn block_size(self) -> u64 {
                match self { $(GgmlType::$variant => $block),* }
            }

            /// Bytes per block.
            pub const fn type_size(self) -> u64 {
                match self { $(GgmlType::$variant => $size),* }
            }

            /// How the byte size is computed.
            pub const fn layout(self) -> Layout {
                match self { $(GgmlType::$variant => $layout),* }
            }
        }
    };
}

const B: Layout = Layout::Blocks;

ggml_types! {
    F32 = (0, "F32", 1, 4, B),
    F16 = (1, "F16", 1, 2, B),
    Q4_0 = (2, "Q4_0", 32, 18, B),
    Q4_1 = (3, "Q4_1", 32, 20, B),
    Q5_0 = (6, "Q5_0", 32, 22, B),
    Q5_1 = (7, "Q5_1", 32, 24, B),
    Q8_0 = (8, "Q8_0", 32, 34, B),
    Q8_1 = (9, "Q8_1", 32, 36, B),
    Q2_K = (10, "Q2_K", 256, 84, B),
    Q3_K = (11, "Q3_K", 256, 110, B),
    Q4_K = (12, "Q4_K", 256, 144, B),
    Q5_K = (13, "Q5_K", 256, 176, B),
    Q6_K = (14, "Q6_K", 256, 210, B),
    Q8_K = (15, "Q8_K", 256, 292, B),
    IQ2_XXS = (16, "IQ2_XXS", 256, 66, B),
    IQ2_XS = (17, "IQ2_XS", 256, 74, B),
    IQ3_XXS = (18, "IQ3_XXS", 256, 98, B),
    IQ1_S = (19, "IQ1_S", 256, 50, B),
    IQ4_NL = (20, "IQ4_NL", 32, 18, B),
    IQ3_S = (21, "IQ3_S", 256, 110, B),
    IQ2_S = (22, "IQ2_S", 256, 82, B),
    IQ4_XS = (23, "IQ4_XS", 256, 136, B),
    I8 = (24, "I8", 1, 1, B),
    I16 = (25, "I16", 1, 2, B),
    I32 = (26, "I32", 1, 4, B),
    I64 = (27, "I64", 1, 8, B),
    F64 = (28, "F64", 1, 8, B),
    IQ1_M = (29, "IQ1_M", 256, 56, B),
    BF16 = (30, "BF16", 1, 2, B),
    TQ1_0 = (34, "TQ1_0", 256, 54, B),
    TQ2_0 = (35, "TQ2_0", 256, 66, B),
    MXFP4 = (39, "MXFP4", 32, 17, B),
    NVFP4 = (40, "NVFP4", 64, 36, B),
    Q1_0 = (41, "Q1_0", 128, 18, B),
    Q2_0 = (42, "Q2_0", 64, 18, B),
    I2_S = (36, "I2_S", 4, 1, Layout::PerTensorTrailer { trailer: 32 }),
    I8_S = (37, "I8_S", 1, 1, B),
    TL1 = (38, "TL1", 1, 1, B),
    TL2 = (39, "TL2", 1, 1, B),
}

/// Why an id does not name a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeIdError {
    /// Never assigned (in this dialect).
    Unknown,
    /// Assigned once and since removed from the format.
    Removed(&'static str),
}

impl GgmlType {
    /// Looks up a file's type id in the given dialect.
    pub fn from_id(id: u32, dialect: Dialect) -> Result<Self, TypeIdError> {
        use GgmlType as T;
        let removed = |name| Err(TypeIdError::Removed(name));
        match (id, dialect) {
            (4, _) => removed("Q4_2"),
            (5, _) => removed("Q4_3"),
            (31, _) => removed("Q4_0_4_4"),
            (32, _) => removed("Q4_0_4_8"),
            (33, _) => removed("Q4_0_8_8"),
            (36, Dialect::Mainline) => removed("IQ4_NL_4_4"),
            (37, Dialect::Mainline) => removed("IQ4_NL_4_8"),
            (38, Dialect::Mainline) => removed("IQ4_NL_8_8"),
            (36, Dialect::BitNet) => Ok(T::I2_S),
            (37, Dialect::BitNet) => Ok(T::I8_S),
            (38, Dialect::BitNet) => Ok(T::TL1),
            (39, Dialect::BitNet) => Ok(T::TL2),
            _ => T::ALL
                .iter()
                .copied()
                .filter(|t| t.dialect_only() != Some(Dialect::BitNet))
                .find(|t| t.id() == id)
                .ok_or(TypeIdError::Unknown),
        }
    }

    /// `Some(dialect)` for types that exist only in one dialect's clashing id range.
    pub const fn dialect_only(self) -> Option<Dialect> {
        match self {
            GgmlType::I2_S | GgmlType::I8_S | GgmlType::TL1 | GgmlType::TL2 => {
                Some(Dialect::BitNet)
            }
            GgmlType::MXFP4 => Some(Dialect::Mainline),
            _ => None,
        }
    }

    /// Bytes needed for a tensor of this type, or why the shape does not fit it.
    ///
    /// `ne0` must be a multiple of the block size (rows hold whole blocks); the
    /// arithmetic is checked so hostile shapes cannot wrap.
    pub fn byte_size(self, ne0: u64, n_elements: u64) -> Result<u64, SizeError> {
        let block = self.block_size();
        if !ne0.is_multiple_of(block) {
            return Err(SizeError::NotBlockMultiple { block });
        }
        match self.layout() {
            Layout::Blocks => (n_elements / block)
                .checked_mul(self.type_size())
                .ok_or(SizeError::Overflow),
            Layout::PerTensorTrailer { trailer } => Ok(n_elements / 4 + trailer),
        }
    }
}

/// Why [`GgmlType::byte_size`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeError {
    /// `ne0` is not a multiple of this block size.
    NotBlockMultiple {
        /// The block size.
        block: u64,
    },
    /// The size does not fit in 64 bits.
    Overflow,
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::f32(0, Dialect::Mainline, Ok(GgmlType::F32))]
    #[case::bf16(30, Dialect::Mainline, Ok(GgmlType::BF16))]
    #[case::tq2_same_in_both(35, Dialect::BitNet, Ok(GgmlType::TQ2_0))]
    #[case::mxfp4_mainline(39, Dialect::Mainline, Ok(GgmlType::MXFP4))]
    #[case::tl2_bitnet(39, Dialect::BitNet, Ok(GgmlType::TL2))]
    #[case::i2s_bitnet(36, Dialect::BitNet, Ok(GgmlType::I2_S))]
    #[case::i2s_id_removed_in_mainline(
        36,
        Dialect::Mainline,
        Err(TypeIdError::Removed("IQ4_NL_4_4"))
    )]
    #[case::q4_2_removed(4, Dialect::Mainline, Err(TypeIdError::Removed("Q4_2")))]
    #[case::q4_0_4_8_removed(32, Dialect::BitNet, Err(TypeIdError::Removed("Q4_0_4_8")))]
    #[case::q2_0(42, Dialect::Mainline, Ok(GgmlType::Q2_0))]
    #[case::past_the_end_is_unknown(43, Dialect::Mainline, Err(TypeIdError::Unknown))]
    #[case::huge_is_unknown(u32::MAX, Dialect::BitNet, Err(TypeIdError::Unknown))]
    fn ids_resolve_per_dialect(
        #[case] id: u32,
        #[case] dialect: Dialect,
        #[case] expected: Result<GgmlType, TypeIdError>,
    ) {
        assert_eq!(GgmlType::from_id(id, dialect), expected);
    }

    #[test]
    fn every_table_entry_round_trips_through_its_id() {
        for &t in GgmlType::ALL {
            let dialect = t.dialect_only().unwrap_or(Dialect::Mainline);
            assert_eq!(GgmlType::from_id(t.id(), dialect), Ok(t), "{t}");
        }
    }

    #[rstest]
    #[case::tq2_row(GgmlType::TQ2_0, 2560, 2560 * 6912, Ok(2560 / 256 * 6912 * 66))]
    #[case::tq1_row(GgmlType::TQ1_0, 512, 512, Ok(2 * 54))]
    #[case::q8_0_partial_block(GgmlType::Q8_0, 33, 33, Err(SizeError::NotBlockMultiple { block: 32 }))]
    #[case::i2_s_trailer(GgmlType::I2_S, 128, 256, Ok(64 + 32))]
    #[case::f32_overflow(GgmlType::F32, 1, u64::MAX / 2, Err(SizeError::Overflow))]
    fn byte_sizes_are_checked(
        #[case] t: GgmlType,
        #[case] ne0: u64,
        #[case] n: u64,
        #[case] expected: Result<u64, SizeError>,
    ) {
        assert_eq!(t.byte_size(ne0, n), expected);
    }

    #[rstest]
    #[case::plain_bitnet(Some("bitnet"), Dialect::BitNet)]
    #[case::b158(Some("bitnet-b1.58"), Dialect::BitNet)]
    #[case::llama(Some("llama"), Dialect::Mainline)]
    #[case::missing(None, Dialect::Mainline)]
    fn dialect_follows_architecture(#[case] arch: Option<&str>, #[case] expected: Dialect) {
        assert_eq!(Dialect::from_architecture(arch), expected);
    }
}
