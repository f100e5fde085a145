//! The validating parser: header, metadata and tensor table → [`GgufIndex`].
//!
//! No I/O happens here; it takes bytes (the whole file or a prefix plus the file's
//! length). Counts read from the file are never used to allocate: vectors grow as
//! entries are read, and every count is first bounded by the bytes remaining.

use std::collections::HashMap;

use super::cursor::Cursor;
use super::error::{GgufError, escape_magic, sniff};
use super::tensor::{MAX_DIMS, MAX_TENSOR_NAME, TensorInfo};
use super::types::{Dialect, GgmlType, SizeError, TypeIdError};
use super::value::ValueType;
use super::{DEFAULT_ALIGNMENT, MAX_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_ARRAY_LEN, MAX_STRING_LEN};

/// Fewest bytes a metadata entry can take: key length, type, 1-byte value. (An empty
/// key is invalid, but counting it keeps the bound loose enough that such a file
/// reaches the more precise "empty key" error.)
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Fewest bytes a tensor entry can take: name length, n_dims, type, offset.
const MIN_TENSOR_BYTES: u64 = 8 + 4 + 4 + 8;
/// Magic, version, tensor count, metadata count.
const HEADER_BYTES: u64 = 4 + 4 + 8 + 8;

/// One metadata entry: its key and where its value's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KvEntry {
    pub(crate) key: Box<str>,
    pub(crate) ty: ValueType,
    /// Absolute offset of the entry (its key length field).
    pub(crate) entry_offset: u64,
    /// Absolute offset of the value's bytes (after the type tag).
    pub(crate) value_offset: u64,
    pub(crate) value_len: u64,
}

/// Everything the parser learns, owning no file bytes (values are byte ranges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GgufIndex {
    pub(crate) version: u32,
    pub(crate) alignment: u64,
    pub(crate) dialect: Dialect,
    pub(crate) data_offset: u64,
    pub(crate) file_len: u64,
    pub(crate) kvs: Vec<KvEntry>,
    pub(crate) tensors: Vec<TensorInfo>,
    pub(crate) tensor_lookup: HashMap<String, usize>,
}

/// Parses and validates `buf`, which holds the first `buf.len()` bytes of a file of
/// `file_len` bytes (`buf.len() == file_len` for a whole file).
pub(crate) fn parse_index(buf: &[u8], file_len: u64) -> Result<GgufIndex, GgufError> {
    let mut cur = Cursor::new(buf, file_len);
    let version = parse_header_start(&mut cur, buf)?;

    let count_offset = cur.pos();
    let n_tensors = cur.u64(|| "the tensor count".into())?;
    let n_kv = cur.u64(|| "the metadata count".into())?;
    let remaining = file_len.saturating_sub(HEADER_BYTES);
    check_count(
        count_offset,
        "tensor",
        n_tensors,
        remaining,
        MIN_TENSOR_BYTES,
    )?;
    check_count(
        count_offset + 8,
        "metadata entry",
        n_kv,
        remaining,
        MIN_KV_BYTES,
    )?;

    let meta = parse_metadata(&mut cur, n_kv)?;
    let tensors = parse_tensor_table(&mut cur, n_tensors, meta.dialect, meta.alignment)?;

    let table_end = cur.pos();
    let data_offset = table_end
        .checked_next_multiple_of(meta.alignment)
        .unwrap_or(u64::MAX);
    let (tensors, tensor_lookup) = tensors;
    check_data_ranges(&tensors, data_offset, file_len)?;

    Ok(GgufIndex {
        version,
        alignment: meta.alignment,
        dialect: meta.dialect,
        data_offset,
        file_len,
        kvs: meta.kvs,
        tensors,
        tensor_lookup,
    })
}

fn parse_header_start(cur: &mut Cursor<'_>, buf: &[u8]) -> Result<u32, GgufError> {
    let file_len = cur.file_len();
    if file_len < 4 {
        // Too short to hold the magic: say what it is rather than only "truncated",
        // deciding from the whole (tiny) file so a prefix parse says the same.
        if (buf.len() as u64) < file_len {
            return Err(GgufError::NeedMoreBytes {
                needed: file_len,
                have: buf.len() as u64,
            });
        }
        if !buf.is_empty() && !b"GGUF".starts_with(buf) {
            return Err(GgufError::BadMagic {
                found: escape_magic(buf),
                looks_like: sniff(buf),
            });
        }
    }
    let magic = cur.take(4, || {
        if file_len == 0 {
            "the magic (the file is empty)".into()
        } else {
            "the magic".into()
        }
    })?;
    if magic == b"FUGG" {
        // gguf-py's big-endian writer packs the magic as a big-endian u32 too.
        let version = cur.u32(|| "the version".into())?;
        return Err(GgufError::BigEndian {
            swapped: version.swap_bytes(),
        });
    }
    if magic != b"GGUF" {
        // The hint looks at up to 64 bytes; ask a prefix parser for them so prefix
        // and whole-file parses report the same thing.
        let sniff_len = file_len.min(64);
        if (buf.len() as u64) < sniff_len {
            return Err(GgufError::NeedMoreBytes {
                needed: sniff_len,
                have: buf.len() as u64,
            });
        }
        return Err(GgufError::BadMagic {
            found: escape_magic(magic),
            looks_like: sniff(buf),
        });
    }
    let version = cur.u32(|| "the version".into())?;
    match version {
        2 | 3 => Ok(version),
        v if (1..=3).contains(&v.swap_bytes()) => Err(GgufError::BigEndian {
            swapped: v.swap_bytes(),
        }),
        v => Err(GgufError::UnsupportedVersion { version: v }),
    }
}

fn check_count(
    offset: u64,
    what: &'static str,
    count: u64,
    remaining: u64,
    min_bytes: u64,
) -> Result<(), GgufError> {
    let max = remaining / min_bytes;
    if count > max {
        return Err(GgufError::CountTooLarge {
            offset,
            what,
            count,
            remaining,
            max,
        });
    }
    Ok(())
}

struct Metadata {
    kvs: Vec<KvEntry>,
    alignment: u64,
    dialect: Dialect,
}

fn parse_metadata(cur: &mut Cursor<'_>, n_kv: u64) -> Result<Metadata, GgufError> {
    let mut kvs: Vec<KvEntry> = Vec::new();
    let mut seen: HashMap<&[u8], u64> = HashMap::new();
    let mut alignment = DEFAULT_ALIGNMENT;
    let mut architecture: Option<String> = None;

    for index in 0..n_kv {
        let entry_offset = cur.pos();
        let key_bytes =
            cur.string_bytes(MAX_STRING_LEN, || format!("key of metadata entry #{index}"))?;
        if key_bytes.is_empty() {
            return Err(GgufError::EmptyKey {
                offset: entry_offset,
                index,
            });
        }
        let key = std::str::from_utf8(key_bytes).map_err(|_| GgufError::InvalidUtf8 {
            offset: entry_offset + 8,
            what: format!("key of metadata entry #{index}"),
        })?;
        if let Some(&first) = seen.get(key_bytes) {
            return Err(GgufError::DuplicateKey {
                offset: entry_offset,
                key: key.to_string(),
                first,
            });
        }
        seen.insert(key_bytes, entry_offset);

        let what = || format!("value of key \"{key}\"");
        let type_offset = cur.pos();
        let type_id = cur.u32(what)?;
        let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
            offset: type_offset,
            what: what(),
            type_id,
        })?;
        let value_offset = cur.pos();
        skip_value(cur, ty, 0, &what)?;
        let value_len = cur.pos() - value_offset;

        match key {
            "general.alignment" => {
                alignment = check_alignment(cur, ty, value_offset)?;
            }
            "general.architecture" if ty == ValueType::String => {
                let bytes = cur.passed(value_offset + 8, value_len - 8);
                architecture = std::str::from_utf8(bytes).ok().map(str::to_string);
            }
            _ => {}
        }
        kvs.push(KvEntry {
            key: key.into(),
            ty,
            entry_offset,
            value_offset,
            value_len,
        });
    }
    Ok(Metadata {
        kvs,
        alignment,
        dialect: Dialect::from_architecture(architecture.as_deref()),
    })
}

fn check_alignment(cur: &Cursor<'_>, ty: ValueType, offset: u64) -> Result<u64, GgufError> {
    let bad = |problem: String| Err(GgufError::BadAlignment { offset, problem });
    if ty != ValueType::U32 {
        return bad(format!("type {ty}, expected UINT32"));
    }
    let bytes = cur.passed(offset, 4);
    let mut le = [0u8; 4];
    le.copy_from_slice(bytes);
    let value = u64::from(u32::from_le_bytes(le));
    if value == 0 {
        bad("value 0; it must be a power of two".into())
    } else if !value.is_power_of_two() {
        bad(format!("value {value} is not a power of two"))
    } else if value > MAX_ALIGNMENT {
        bad(format!("value {value} exceeds the 1 MiB limit"))
    } else {
        Ok(value)
    }
}

/// Validates one value of type `ty` at the cursor and moves past it.
fn skip_value(
    cur: &mut Cursor<'_>,
    ty: ValueType,
    depth: u32,
    what: &dyn Fn() -> String,
) -> Result<(), GgufError> {
    match ty {
        ValueType::String => {
            let offset = cur.pos();
            let bytes = cur.string_bytes(MAX_STRING_LEN, what)?;
            check_utf8(bytes, offset + 8, what)
        }
        ValueType::Bool => check_bool(cur, what),
        ValueType::Array => skip_array(cur, depth + 1, what),
        fixed => cur.take(fixed.min_size(), what).map(drop),
    }
}

fn check_utf8(bytes: &[u8], offset: u64, what: &dyn Fn() -> String) -> Result<(), GgufError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(GgufError::InvalidUtf8 {
            offset,
            what: what(),
        });
    }
    Ok(())
}

fn check_bool(cur: &mut Cursor<'_>, what: &dyn Fn() -> String) -> Result<(), GgufError> {
    let offset = cur.pos();
    let value = cur.u8(what)?;
    if value > 1 {
        return Err(GgufError::InvalidBool {
            offset,
            what: what(),
            value,
        });
    }
    Ok(())
}

fn skip_array(
    cur: &mut Cursor<'_>,
    depth: u32,
    what: &dyn Fn() -> String,
) -> Result<(), GgufError> {
    let offset = cur.pos();
    if depth > MAX_ARRAY_DEPTH {
        return Err(GgufError::NestingTooDeep {
            offset,
            what: what(),
            depth,
            limit: MAX_ARRAY_DEPTH,
        });
    }
    let type_id = cur.u32(what)?;
    let elem = ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
        offset,
        what: format!("element type of {}", what()),
        type_id,
    })?;
    let len_offset = cur.pos();
    let len = cur.u64(what)?;
    let max = MAX_ARRAY_LEN.min(cur.remaining() / elem.min_size());
    if len > max {
        return Err(GgufError::ArrayTooLong {
            offset: len_offset,
            what: what(),
            len,
            max,
        });
    }
    match elem {
        ValueType::String => {
            // The hot loop for tokenizer vocabularies: one length read, one bounds
            // check and one UTF-8 check per element, no allocation.
            for i in 0..len {
                let offset = cur.pos();
                let elem_what = || format!("element #{i} of {}", what());
                let bytes = cur.string_bytes(MAX_STRING_LEN, elem_what)?;
                check_utf8(bytes, offset + 8, &elem_what)?;
            }
            Ok(())
        }
        ValueType::Bool => {
            for i in 0..len {
                check_bool(cur, &|| format!("element #{i} of {}", what()))?;
            }
            Ok(())
        }
        ValueType::Array => {
            for i in 0..len {
                skip_array(cur, depth + 1, &|| format!("element #{i} of {}", what()))?;
            }
            Ok(())
        }
        // `len <= remaining / size`, so the product cannot overflow.
        fixed => cur.take(len * fixed.min_size(), what).map(drop),
    }
}

type TensorTable = (Vec<TensorInfo>, HashMap<String, usize>);

fn parse_tensor_table(
    cur: &mut Cursor<'_>,
    n_tensors: u64,
    dialect: Dialect,
    alignment: u64,
) -> Result<TensorTable, GgufError> {
    let mut tensors: Vec<TensorInfo> = Vec::new();
    let mut lookup: HashMap<String, usize> = HashMap::new();
    for index in 0..n_tensors {
        let info_offset = cur.pos();
        let name_what = || format!("name of tensor #{index}");
        let name_bytes = cur.string_bytes(MAX_STRING_LEN, name_what)?;
        let name = std::str::from_utf8(name_bytes).map_err(|_| GgufError::InvalidUtf8 {
            offset: info_offset + 8,
            what: name_what(),
        })?;
        let len = name_bytes.len() as u64;
        if len == 0 || len > MAX_TENSOR_NAME {
            return Err(GgufError::BadTensorName {
                offset: info_offset,
                index,
                name: name.chars().take(80).collect(),
                len,
            });
        }
        if let Some(&first) = lookup.get(name) {
            return Err(GgufError::DuplicateTensor {
                offset: info_offset,
                name: name.to_string(),
                first: tensors[first].info_offset,
            });
        }
        let info = parse_tensor_entry(cur, name, info_offset, dialect, alignment)?;
        lookup.insert(name.to_string(), tensors.len());
        tensors.push(info);
    }
    Ok((tensors, lookup))
}

fn parse_tensor_entry(
    cur: &mut Cursor<'_>,
    name: &str,
    info_offset: u64,
    dialect: Dialect,
    alignment: u64,
) -> Result<TensorInfo, GgufError> {
    let what = || format!("tensor \"{name}\"");
    let tensor = || name.to_string();
    let n_dims_offset = cur.pos();
    let n_dims = cur.u32(what)?;
    if n_dims > MAX_DIMS {
        return Err(GgufError::TooManyDims {
            offset: n_dims_offset,
            tensor: tensor(),
            n_dims,
        });
    }
    let dims_offset = cur.pos();
    let mut dims = [1u64; 4];
    for (axis, dim) in dims.iter_mut().enumerate().take(n_dims as usize) {
        let offset = cur.pos();
        let value = cur.u64(what)?;
        if value > i64::MAX as u64 {
            return Err(GgufError::NegativeDim {
                offset,
                tensor: tensor(),
                axis,
                value: value as i64,
            });
        }
        *dim = value;
    }
    // Check every partial product (not just the final one) so no wrap slips through.
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| {
            acc.checked_mul(d).filter(|&n| n <= i64::MAX as u64)
        })
        .ok_or_else(|| GgufError::ElementCountOverflow {
            offset: dims_offset,
            tensor: tensor(),
            dims: dims[..n_dims as usize].to_vec(),
        })?;

    let type_offset = cur.pos();
    let type_id = cur.u32(what)?;
    let ggml_type = GgmlType::from_id(type_id, dialect).map_err(|e| match e {
        TypeIdError::Unknown => GgufError::UnknownType {
            offset: type_offset,
            tensor: tensor(),
            id: type_id,
            dialect: dialect.name(),
        },
        TypeIdError::Removed(old) => GgufError::RemovedType {
            offset: type_offset,
            tensor: tensor(),
            id: type_id,
            name: old,
        },
    })?;
    let size = ggml_type
        .byte_size(dims[0], n_elements)
        .map_err(|e| match e {
            SizeError::NotBlockMultiple { block } => GgufError::NotBlockMultiple {
                offset: dims_offset,
                tensor: tensor(),
                ne0: dims[0],
                block,
                type_name: ggml_type.name(),
            },
            SizeError::Overflow => GgufError::ByteSizeOverflow {
                offset: type_offset,
                tensor: tensor(),
                n_elements,
                type_name: ggml_type.name(),
            },
        })?;

    let offset_field = cur.pos();
    let offset = cur.u64(what)?;
    if !offset.is_multiple_of(alignment) {
        return Err(GgufError::MisalignedTensor {
            offset: offset_field,
            tensor: tensor(),
            data_offset: offset,
            alignment,
        });
    }
    Ok(TensorInfo {
        name: name.to_string(),
        n_dims: n_dims as u8,
        dims,
        ggml_type,
        offset,
        size,
        n_elements,
        info_offset,
    })
}

/// Checks, in data order, that every tensor lies inside the file and that none overlap.
fn check_data_ranges(
    tensors: &[TensorInfo],
    data_offset: u64,
    file_len: u64,
) -> Result<(), GgufError> {
    let sorted = tensors.windows(2).all(|w| w[0].offset <= w[1].offset);
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    if !sorted {
        order.sort_by_key(|&i| tensors[i].offset);
    }
    let mut prev: Option<(usize, u64)> = None;
    for i in order {
        let t = &tensors[i];
        let start = data_offset.saturating_add(t.offset);
        let end = start.saturating_add(t.size);
        if let Some((p, prev_end)) = prev
            && start < prev_end
            && t.size > 0
        {
            return Err(GgufError::OverlappingTensors {
                offset: start,
                tensor: t.name.clone(),
                other: tensors[p].name.clone(),
                other_end: prev_end,
            });
        }
        if end > file_len {
            return Err(GgufError::TensorPastEof {
                offset: start,
                tensor: t.name.clone(),
                end,
                file_len,
            });
        }
        if prev.is_none_or(|(_, prev_end)| end > prev_end) {
            prev = Some((i, end));
        }
    }
    Ok(())
}
