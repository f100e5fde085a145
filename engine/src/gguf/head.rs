//! The public views over a parsed file: [`GgufHead`] (metadata and tensor table,
//! possibly from a prefix) and [`Gguf`] (the whole file, with tensor data).

use std::borrow::Cow;
use std::io::Read;
use std::ops::Deref;
use std::path::Path;

use super::error::GgufError;
use super::mapped::MappedGguf;
use super::parse::{GgufIndex, parse_index};
use super::tensor::{Tensor, TensorInfo};
use super::types::Dialect;
use super::value::{Array, Value, ValueType};

/// Metadata and tensor table of a GGUF file, borrowed from (a prefix of) its bytes.
#[derive(Debug, Clone)]
pub struct GgufHead<'a> {
    pub(crate) index: Cow<'a, GgufIndex>,
    pub(crate) bytes: &'a [u8],
}

macro_rules! typed_getter {
    ($(#[$doc:meta])* $fn:ident, $variant:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $fn(&self, key: &str) -> Result<$ty, GgufError> {
            match self.require(key)? {
                Value::$variant(v) => Ok(v),
                other => Err(self.mismatch(key, ValueType::$variant, &other)),
            }
        }
    };
}

impl<'a> GgufHead<'a> {
    /// Parses the first `prefix.len()` bytes of a file that is `file_len` bytes long.
    ///
    /// Validation is the same as for the whole file (including that every tensor's
    /// data fits in `file_len`). If the prefix ends before the tensor table does,
    /// the error is [`GgufError::NeedMoreBytes`]: read at least `needed` bytes and
    /// call again.
    pub fn parse(prefix: &'a [u8], file_len: u64) -> Result<Self, GgufError> {
        let index = parse_index(prefix, file_len)?;
        Ok(GgufHead {
            index: Cow::Owned(index),
            bytes: prefix,
        })
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.index.version
    }

    /// Alignment of tensor data (from `general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.index.alignment
    }

    /// Which meaning of type ids 36-39 the file was read with (see [`Dialect`]).
    pub fn dialect(&self) -> Dialect {
        self.index.dialect
    }

    /// Absolute offset where the data section starts; tensor offsets are relative to it.
    /// It is also the prefix length a streaming reader needs.
    pub fn tensor_data_offset(&self) -> u64 {
        self.index.data_offset
    }

    /// Length of the whole file.
    pub fn file_len(&self) -> u64 {
        self.index.file_len
    }

    /// Number of metadata entries.
    pub fn metadata_len(&self) -> usize {
        self.index.kvs.len()
    }

    /// All metadata entries in file order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, Value<'a>)> + '_ {
        self.index
            .kvs
            .iter()
            .filter_map(|kv| Some((&*kv.key, self.decode(kv)?)))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        let kv = self.index.kvs.iter().find(|kv| &*kv.key == key)?;
        self.decode(kv)
    }

    /// Absolute offset of `key`'s value, for messages.
    pub fn value_offset(&self, key: &str) -> Option<u64> {
        let kv = self.index.kvs.iter().find(|kv| &*kv.key == key)?;
        Some(kv.value_offset)
    }

    fn decode(&self, kv: &super::parse::KvEntry) -> Option<Value<'a>> {
        let start = usize::try_from(kv.value_offset).ok()?;
        let len = usize::try_from(kv.value_len).ok()?;
        let bytes = self.bytes.get(start..start.checked_add(len)?)?;
        Value::decode(kv.ty, bytes, kv.value_offset).map(|(v, _)| v)
    }

    fn require(&self, key: &str) -> Result<Value<'a>, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_string(),
        })
    }

    fn mismatch(&self, key: &str, expected: ValueType, found: &Value<'_>) -> GgufError {
        GgufError::TypeMismatch {
            offset: self.value_offset(key).unwrap_or(0),
            key: key.to_string(),
            expected: expected.name().to_string(),
            found: found.type_description(),
        }
    }

    typed_getter!(
        /// `key` as a UINT8; errors name the key and both types.
        get_u8, U8, u8
    );
    typed_getter!(
        /// `key` as a UINT16.
        get_u16, U16, u16
    );
    typed_getter!(
        /// `key` as a UINT32.
        get_u32, U32, u32
    );
    typed_getter!(
        /// `key` as an INT32.
        get_i32, I32, i32
    );
    typed_getter!(
        /// `key` as a UINT64.
        get_u64, U64, u64
    );
    typed_getter!(
        /// `key` as an INT64.
        get_i64, I64, i64
    );
    typed_getter!(
        /// `key` as a FLOAT32.
        get_f32, F32, f32
    );
    typed_getter!(
        /// `key` as a FLOAT64.
        get_f64, F64, f64
    );
    typed_getter!(
        /// `key` as a BOOL.
        get_bool, Bool, bool
    );
    typed_getter!(
        /// `key` as a STRING.
        get_str, String, &'a str
    );
    typed_getter!(
        /// `key` as an ARRAY (of any element type).
        get_array, Array, Array<'a>
    );

    /// `general.architecture`, if present and a string.
    pub fn architecture(&self) -> Option<&'a str> {
        match self.get("general.architecture")? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The tensor table in file order.
    pub fn tensor_infos(&self) -> &[TensorInfo] {
        &self.index.tensors
    }

    /// One tensor's table entry by name.
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        let &i = self.index.tensor_lookup.get(name)?;
        self.index.tensors.get(i)
    }
}

impl GgufIndex {
    pub(crate) fn view<'a>(&'a self, bytes: &'a [u8]) -> Gguf<'a> {
        Gguf {
            head: GgufHead {
                index: Cow::Borrowed(self),
                bytes,
            },
        }
    }
}

/// A whole GGUF file: metadata, tensor table and zero-copy tensor data.
#[derive(Debug, Clone)]
pub struct Gguf<'a> {
    head: GgufHead<'a>,
}

impl<'a> Gguf<'a> {
    /// Parses and validates a whole file's bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, GgufError> {
        Ok(Gguf {
            head: GgufHead::parse(bytes, bytes.len() as u64)?,
        })
    }

    /// Opens `path` (fstat on the same descriptor, regular files only), maps it
    /// and parses it. Use [`MappedGguf::gguf`] on the result for a view.
    pub fn open(path: impl AsRef<Path>) -> Result<MappedGguf, GgufError> {
        MappedGguf::open(path)
    }

    /// Every tensor with its data, in file order.
    pub fn tensors(&self) -> impl ExactSizeIterator<Item = Tensor<'_, 'a>> + '_ {
        self.head.index.tensors.iter().map(|info| Tensor {
            info,
            data: self.data_of(info),
        })
    }

    /// One tensor with its data, by name.
    pub fn tensor(&self, name: &str) -> Option<Tensor<'_, 'a>> {
        let info = self.head.tensor_info(name)?;
        Some(Tensor {
            info,
            data: self.data_of(info),
        })
    }

    /// The data of a tensor from this file's table.
    pub fn data_of(&self, info: &TensorInfo) -> &'a [u8] {
        // Parsing checked start + size <= file length == bytes.len().
        let start = self.head.index.data_offset.saturating_add(info.offset);
        let end = start.saturating_add(info.size);
        let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
            return &[];
        };
        self.head.bytes.get(start..end).unwrap_or(&[])
    }

    /// The whole file's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.head.bytes
    }
}

impl<'a> Deref for Gguf<'a> {
    type Target = GgufHead<'a>;

    fn deref(&self) -> &GgufHead<'a> {
        &self.head
    }
}

/// A [`GgufHead`] that owns the prefix bytes it was parsed from, for readers that
/// stream the file instead of mapping it.
#[derive(Debug, Clone)]
pub struct OwnedGgufHead {
    bytes: Vec<u8>,
    index: GgufIndex,
}

/// First read size: covers the header of almost every model without a retry.
const FIRST_READ: u64 = 1 << 20;

impl OwnedGgufHead {
    /// Reads from the start of a file of `file_len` bytes until the header, metadata
    /// and tensor table parse, growing the buffer only as bytes actually arrive.
    pub fn read_from<R: Read>(mut reader: R, file_len: u64) -> Result<Self, GgufError> {
        let mut bytes = Vec::new();
        let mut want = FIRST_READ.min(file_len);
        loop {
            let have = bytes.len() as u64;
            if want > have {
                (&mut reader)
                    .take(want - have)
                    .read_to_end(&mut bytes)
                    .map_err(|source| GgufError::Io {
                        path: "<reader>".into(),
                        source,
                    })?;
            }
            let got = bytes.len() as u64;
            let short = got < want;
            match parse_index(&bytes, file_len) {
                Ok(index) => return Ok(OwnedGgufHead { bytes, index }),
                Err(GgufError::NeedMoreBytes { needed, .. }) if !short => {
                    // Doubling keeps the total re-parse work linear in the prefix size.
                    want = needed.max(got.saturating_mul(2)).min(file_len);
                }
                Err(GgufError::NeedMoreBytes { .. }) => {
                    return Err(GgufError::Io {
                        path: "<reader>".into(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("the reader ended after {got} bytes of a {file_len}-byte file"),
                        ),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A view of the parsed head.
    pub fn head(&self) -> GgufHead<'_> {
        GgufHead {
            index: Cow::Borrowed(&self.index),
            bytes: &self.bytes,
        }
    }

    /// The prefix bytes that were read (at least up to the data section, maybe more).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}
