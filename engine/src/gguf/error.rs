//! The one error type of the GGUF reader and writer.
//!
//! Every variant that comes from the file's bytes names the byte offset where the
//! problem starts and the key or tensor involved, so that `Display` reads as
//! `<what is wrong> at offset N (<where>)`. [`GgufError::help`] says what to do next.

use std::path::PathBuf;

/// Why a GGUF file (or a prefix of one) was rejected, or why a lookup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// Only a prefix was given and it ends before the tensor table does.
    /// Read at least `needed` bytes from the start of the file and parse again.
    #[error(
        "need more bytes (at least {needed}) at offset {have} (only a {have}-byte prefix was given)"
    )]
    NeedMoreBytes {
        /// Minimum prefix length that lets parsing get past this point.
        needed: u64,
        /// Length of the prefix that was given.
        have: u64,
    },
    /// The file ends before a field is complete.
    #[error(
        "file ends in the middle of {what} at offset {offset} ({needed} bytes needed, the file has {file_len})"
    )]
    Truncated {
        /// Where the incomplete field starts.
        offset: u64,
        /// The field being read, e.g. `value of key "general.name"`.
        what: String,
        /// File length that the field would need.
        needed: u64,
        /// Actual file length.
        file_len: u64,
    },
    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file: the magic is {found} at offset 0 (expected \"GGUF\")")]
    BadMagic {
        /// The bytes found, escaped for printing.
        found: String,
        /// What the start of the file looks like, for the hint.
        looks_like: Option<&'static str>,
    },
    /// The magic is right but the header is byte-swapped.
    #[error(
        "big-endian GGUF is not supported at offset 4 (the version reads {swapped} when byte-swapped)"
    )]
    BigEndian {
        /// The version field interpreted big-endian.
        swapped: u32,
    },
    /// A GGUF version other than 2 or 3.
    #[error("unsupported GGUF version {version} at offset 4 (supported: 2 and 3)")]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// `n_tensors` or `n_kv` claims more entries than the rest of the file can hold.
    #[error(
        "{what} count {count} is impossible at offset {offset} (the {remaining} bytes after the header hold at most {max})"
    )]
    CountTooLarge {
        /// Where the count field starts.
        offset: u64,
        /// `"tensor"` or `"metadata entry"`.
        what: &'static str,
        /// The count read from the file.
        count: u64,
        /// Bytes left in the file after the header.
        remaining: u64,
        /// Most entries that many bytes could hold.
        max: u64,
    },
    /// A string length above the 1 GiB cap or above the bytes remaining.
    #[error("string length {len} exceeds the limit of {max} bytes at offset {offset} ({what})")]
    StringTooLong {
        /// Where the length field starts.
        offset: u64,
        /// What the string is.
        what: String,
        /// The length read.
        len: u64,
        /// The smaller of the cap and the bytes remaining.
        max: u64,
    },
    /// An array length above the cap or above what the bytes remaining can hold.
    #[error("array length {len} exceeds the limit of {max} elements at offset {offset} ({what})")]
    ArrayTooLong {
        /// Where the length field starts.
        offset: u64,
        /// Which value the array is.
        what: String,
        /// The length read.
        len: u64,
        /// The smaller of the cap and what the bytes remaining can hold.
        max: u64,
    },
    /// Arrays nested deeper than [`super::MAX_ARRAY_DEPTH`].
    #[error("arrays nested {depth} deep at offset {offset} ({what}; the limit is {limit})")]
    NestingTooDeep {
        /// Where the too-deep array starts.
        offset: u64,
        /// Which value.
        what: String,
        /// The depth reached.
        depth: u32,
        /// The limit.
        limit: u32,
    },
    /// A metadata value type id outside 0..=12.
    #[error("unknown metadata value type {type_id} at offset {offset} ({what})")]
    UnknownValueType {
        /// Where the type field starts.
        offset: u64,
        /// Which value.
        what: String,
        /// The id read.
        type_id: u32,
    },
    /// A BOOL whose byte is neither 0 nor 1.
    #[error("invalid bool byte {value} at offset {offset} ({what}; must be 0 or 1)")]
    InvalidBool {
        /// Where the byte is.
        offset: u64,
        /// Which value.
        what: String,
        /// The byte read.
        value: u8,
    },
    /// A string (key, value or tensor name) that is not UTF-8.
    #[error("string is not valid UTF-8 at offset {offset} ({what})")]
    InvalidUtf8 {
        /// Where the string's bytes start.
        offset: u64,
        /// What the string is.
        what: String,
    },
    /// A metadata key of length 0.
    #[error("empty metadata key at offset {offset} (metadata entry #{index})")]
    EmptyKey {
        /// Where the key starts.
        offset: u64,
        /// Index of the entry.
        index: u64,
    },
    /// The same key appears twice.
    #[error(
        "duplicate metadata key at offset {offset} (key \"{key}\", first defined at offset {first})"
    )]
    DuplicateKey {
        /// Where the second copy starts.
        offset: u64,
        /// The key.
        key: String,
        /// Where the first copy starts.
        first: u64,
    },
    /// `general.alignment` has the wrong type or an invalid value.
    #[error("invalid general.alignment at offset {offset} ({problem})")]
    BadAlignment {
        /// Where the value starts.
        offset: u64,
        /// What is wrong with it.
        problem: String,
    },
    /// A tensor name that is empty or longer than 64 bytes.
    #[error(
        "tensor name of {len} bytes at offset {offset} (tensor #{index} \"{name}\"; must be 1 to 64 bytes)"
    )]
    BadTensorName {
        /// Where the name starts.
        offset: u64,
        /// Index of the tensor.
        index: u64,
        /// The name, lossily decoded and shortened.
        name: String,
        /// Its length in bytes.
        len: u64,
    },
    /// The same tensor name appears twice.
    #[error(
        "duplicate tensor name at offset {offset} (tensor \"{name}\", first defined at offset {first})"
    )]
    DuplicateTensor {
        /// Where the second copy starts.
        offset: u64,
        /// The name.
        name: String,
        /// Where the first copy starts.
        first: u64,
    },
    /// More than four dimensions.
    #[error("tensor has {n_dims} dimensions at offset {offset} (tensor \"{tensor}\"; at most 4)")]
    TooManyDims {
        /// Where the `n_dims` field starts.
        offset: u64,
        /// The tensor.
        tensor: String,
        /// The count read.
        n_dims: u32,
    },
    /// A dimension whose signed value is negative.
    #[error("negative dimension {value} at offset {offset} (tensor \"{tensor}\", axis {axis})")]
    NegativeDim {
        /// Where the dimension starts.
        offset: u64,
        /// The tensor.
        tensor: String,
        /// Which axis, 0 = ne0.
        axis: usize,
        /// The value as a signed integer.
        value: i64,
    },
    /// The product of the dimensions overflows a signed 64-bit count.
    #[error("element count overflows at offset {offset} (tensor \"{tensor}\", dims {dims:?})")]
    ElementCountOverflow {
        /// Where the dims start.
        offset: u64,
        /// The tensor.
        tensor: String,
        /// The dims in file order.
        dims: Vec<u64>,
    },
    /// The element count times the type's size overflows.
    #[error(
        "byte size overflows at offset {offset} (tensor \"{tensor}\", {n_elements} elements of {type_name})"
    )]
    ByteSizeOverflow {
        /// Where the type field starts.
        offset: u64,
        /// The tensor.
        tensor: String,
        /// Element count.
        n_elements: u64,
        /// The ggml type.
        type_name: &'static str,
    },
    /// `ne0` is not a multiple of the type's block size.
    #[error(
        "row length {ne0} is not a multiple of the {type_name} block size {block} at offset {offset} (tensor \"{tensor}\")"
    )]
    NotBlockMultiple {
        /// Where the dims start.
        offset: u64,
        /// The tensor.
        tensor: String,
        /// The first dimension.
        ne0: u64,
        /// The block size.
        block: u64,
        /// The ggml type.
        type_name: &'static str,
    },
    /// A ggml type id this reader does not know (in the file's dialect).
    #[error(
        "unknown ggml type id {id} at offset {offset} (tensor \"{tensor}\", {dialect} dialect)"
    )]
    UnknownType {
        /// Where the type field starts.
        offset: u64,
        /// The tensor.
        tensor: String,
        /// The id read.
        id: u32,
        /// The dialect the file was read in.
        dialect: &'static str,
    },
    /// A ggml type id that was removed from the format.
    #[error("removed ggml type id {id} ({name}) at offset {offset} (tensor \"{tensor}\")")]
    RemovedType {
        /// Where the type field starts.
        offset: u64,
        /// The tensor.
        tensor: String,
        /// The id read.
        id: u32,
        /// Its historical name.
        name: &'static str,
    },
    /// A tensor's data offset is not a multiple of the alignment.
    #[error(
        "tensor data offset {data_offset} is not a multiple of the alignment {alignment} at offset {offset} (tensor \"{tensor}\")"
    )]
    MisalignedTensor {
        /// Where the tensor's offset field starts.
        offset: u64,
        /// The tensor.
        tensor: String,
        /// The offset relative to the data section.
        data_offset: u64,
        /// The file's alignment.
        alignment: u64,
    },
    /// A tensor's data extends past the end of the file.
    #[error(
        "tensor data runs past the end of the file at offset {offset} (tensor \"{tensor}\" needs bytes up to {end}, the file has {file_len})"
    )]
    TensorPastEof {
        /// Absolute offset where the tensor's data starts.
        offset: u64,
        /// The tensor.
        tensor: String,
        /// Absolute end of its data (file size it needs).
        end: u64,
        /// Actual file size.
        file_len: u64,
    },
    /// Two tensors' data ranges overlap.
    #[error(
        "tensor data overlaps another tensor at offset {offset} (tensor \"{tensor}\" starts before \"{other}\" ends at {other_end})"
    )]
    OverlappingTensors {
        /// Absolute offset where this tensor's data starts.
        offset: u64,
        /// This tensor.
        tensor: String,
        /// The tensor it overlaps.
        other: String,
        /// Absolute end of the other tensor's data.
        other_end: u64,
    },
    /// A typed getter found no such key.
    #[error("metadata key \"{key}\" is missing")]
    MissingKey {
        /// The key looked up.
        key: String,
    },
    /// A typed getter found the key with another type.
    #[error(
        "metadata key has type {found}, expected {expected} at offset {offset} (key \"{key}\")"
    )]
    TypeMismatch {
        /// Where the value starts.
        offset: u64,
        /// The key.
        key: String,
        /// The type the caller asked for.
        expected: String,
        /// The type in the file.
        found: String,
    },
    /// The path exists but is a directory, FIFO, socket or device.
    #[error("{path} is not a regular file (it is a {kind})")]
    NotRegularFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// Opening, reading, writing or mapping failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path (or a description of the stream).
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A writer was used inconsistently (wrong data length, wrong order).
    #[error("GGUF writer misuse: {problem}")]
    WriterMisuse {
        /// What went wrong.
        problem: String,
    },
}

impl GgufError {
    /// What the user can do about it, printed as a `help:` line.
    pub fn help(&self) -> String {
        use GgufError::*;
        let s: &str = match self {
            NeedMoreBytes { .. } => {
                "read at least that many bytes from the start of the file and parse again"
            }
            Truncated { .. } => {
                "the file is incomplete: re-download or re-copy it and compare its size with the source"
            }
            BadMagic { looks_like, .. } => {
                return match looks_like {
                    Some(kind) => format!(
                        "this looks like {kind}, not a model; download the file again (check the URL and any login)"
                    ),
                    None => "check that the path points at a .gguf model file".to_string(),
                };
            }
            BigEndian { .. } => "convert it to little-endian with gguf-py's gguf_convert_endian.py",
            UnsupportedVersion { version: 1 } => {
                "GGUF v1 used 32-bit counts; re-convert the model with a current llama.cpp"
            }
            UnsupportedVersion { .. } => {
                "this reader handles GGUF v2 and v3; re-convert the model or upgrade gauntlet"
            }
            CountTooLarge { .. } | StringTooLong { .. } | ArrayTooLong { .. } => {
                "the length field is corrupt or the file is truncated; re-download the file"
            }
            NestingTooDeep { .. } => {
                "nested arrays this deep are never written by real tools; the file is corrupt or hostile"
            }
            UnknownValueType { .. } => {
                "value types are 0 (UINT8) to 12 (FLOAT64); the file is corrupt"
            }
            InvalidBool { .. } => "a BOOL must be stored as byte 0 or 1; the file is corrupt",
            InvalidUtf8 { .. } => {
                "GGUF strings must be UTF-8; the file is corrupt or was written by a broken tool"
            }
            EmptyKey { .. } => "every metadata key needs a name; fix the tool that wrote the file",
            DuplicateKey { .. } => "each key may appear once; fix the tool that wrote the file",
            BadAlignment { .. } => {
                "general.alignment must be a UINT32 power of two between 1 and 1 MiB (default 32)"
            }
            BadTensorName { .. } => "tensor names must be 1 to 64 bytes (GGML_MAX_NAME)",
            DuplicateTensor { .. } => {
                "each tensor name may appear once; fix the tool that wrote the file"
            }
            TooManyDims { .. } => "ggml tensors have at most 4 dimensions; the file is corrupt",
            NegativeDim { .. } | ElementCountOverflow { .. } | ByteSizeOverflow { .. } => {
                "the tensor shape is corrupt or hostile; re-download or re-convert the model"
            }
            NotBlockMultiple { .. } => {
                "quantized rows must hold whole blocks; re-quantize with a type whose block divides the row"
            }
            UnknownType { .. } => {
                "the file uses a quantization this reader does not know; BitNet-fork ids 36-39 are read only when general.architecture starts with \"bitnet\""
            }
            RemovedType { .. } => {
                "this type was removed from ggml; re-quantize the model with a current llama.cpp"
            }
            MisalignedTensor { .. } | OverlappingTensors { .. } => {
                "the tensor table is corrupt; re-convert the model"
            }
            TensorPastEof { .. } => {
                "the file is truncated: re-download it and compare its size with the source"
            }
            MissingKey { .. } => {
                "the model lacks this key; check that it was converted for this architecture"
            }
            TypeMismatch { .. } => {
                "the key exists with another type; the model was converted by an incompatible tool"
            }
            NotRegularFile { .. } => "pass the path of a .gguf file",
            Io { .. } => "check that the path exists and is readable",
            WriterMisuse { .. } => {
                "declare every tensor before writing data, then write exactly its size_bytes in order"
            }
        };
        s.to_string()
    }

    /// The byte offset the error points at, if it comes from the file's bytes.
    pub fn offset(&self) -> Option<u64> {
        use GgufError::*;
        match self {
            NeedMoreBytes { have, .. } => Some(*have),
            Truncated { offset, .. }
            | CountTooLarge { offset, .. }
            | StringTooLong { offset, .. }
            | ArrayTooLong { offset, .. }
            | NestingTooDeep { offset, .. }
            | UnknownValueType { offset, .. }
            | InvalidBool { offset, .. }
            | InvalidUtf8 { offset, .. }
            | EmptyKey { offset, .. }
            | DuplicateKey { offset, .. }
            | BadAlignment { offset, .. }
            | BadTensorName { offset, .. }
            | DuplicateTensor { offset, .. }
            | TooManyDims { offset, .. }
            | NegativeDim { offset, .. }
            | ElementCountOverflow { offset, .. }
            | ByteSizeOverflow { offset, .. }
            | NotBlockMultiple { offset, .. }
            | UnknownType { offset, .. }
            | RemovedType { offset, .. }
            | MisalignedTensor { offset, .. }
            | TensorPastEof { offset, .. }
            | OverlappingTensors { offset, .. }
            | TypeMismatch { offset, .. } => Some(*offset),
            BadMagic { .. } => Some(0),
            BigEndian { .. } | UnsupportedVersion { .. } => Some(4),
            MissingKey { .. } | NotRegularFile { .. } | Io { .. } | WriterMisuse { .. } => None,
        }
    }

    /// True when the failure is the environment's (I/O), not the file's content.
    /// The CLI maps this to exit code 1 and everything else to 2.
    pub fn is_io(&self) -> bool {
        matches!(self, GgufError::Io { .. })
    }

    /// For [`GgufError::NeedMoreBytes`], the prefix length to read before retrying.
    pub fn needed_bytes(&self) -> Option<u64> {
        match self {
            GgufError::NeedMoreBytes { needed, .. } => Some(*needed),
            _ => None,
        }
    }
}

/// Names what the first bytes of a non-GGUF file look like, for the hint.
pub(crate) fn sniff(prefix: &[u8]) -> Option<&'static str> {
    let trimmed: &[u8] = {
        let start = prefix
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(prefix.len());
        &prefix[start..]
    };
    let lower: Vec<u8> = trimmed
        .iter()
        .take(64)
        .map(u8::to_ascii_lowercase)
        .collect();
    if lower.starts_with(b"<!doctype html")
        || lower.starts_with(b"<html")
        || lower.starts_with(b"<head")
    {
        Some("an HTML page (an error or login page saved in place of the model)")
    } else if lower.starts_with(b"<?xml") || lower.starts_with(b"<") {
        Some("an XML or HTML document")
    } else if lower.starts_with(b"version https://git-lfs") {
        Some("a Git LFS pointer file (run `git lfs pull`)")
    } else if lower.starts_with(b"{") {
        Some("a JSON document")
    } else if lower.starts_with(b"pk\x03\x04") {
        Some("a zip archive (a PyTorch checkpoint?)")
    } else if prefix.len() >= 8 && prefix[..8].iter().all(|&b| b == 0) {
        Some("a run of zero bytes (a preallocated or unfinished download)")
    } else {
        None
    }
}

/// Escapes up to four bytes for the bad-magic message.
pub(crate) fn escape_magic(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes.iter().take(4) {
        s.extend(std::ascii::escape_default(b).map(char::from));
    }
    s.push('"');
    s
}
