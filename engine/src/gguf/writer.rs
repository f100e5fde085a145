//! A streaming GGUF v3 writer.
//!
//! Tensors are declared up front (name, dims, type), which fixes every offset, so
//! the header can be written before any tensor data exists. Data then streams in
//! file order through [`GgufWriter::write_data`] in chunks of any size; the writer
//! holds no tensor data and inserts the alignment padding itself.

use std::collections::HashSet;
use std::io::Write;

use super::error::GgufError;
use super::tensor::{MAX_DIMS, MAX_TENSOR_NAME};
use super::types::GgmlType;
use super::value::ValueType;
use super::{DEFAULT_ALIGNMENT, MAX_ALIGNMENT};

/// An owned metadata value to write.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// UINT8
    U8(u8),
    /// INT8
    I8(i8),
    /// UINT16
    U16(u16),
    /// INT16
    I16(i16),
    /// UINT32
    U32(u32),
    /// INT32
    I32(i32),
    /// FLOAT32
    F32(f32),
    /// BOOL
    Bool(bool),
    /// STRING
    String(String),
    /// ARRAY of `elem`; every item must have that type.
    Array {
        /// Element type (needed for empty arrays).
        elem: ValueType,
        /// The elements.
        items: Vec<MetaValue>,
    },
    /// UINT64
    U64(u64),
    /// INT64
    I64(i64),
    /// FLOAT64
    F64(f64),
}

impl MetaValue {
    /// The type tag written for this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            MetaValue::U8(_) => ValueType::U8,
            MetaValue::I8(_) => ValueType::I8,
            MetaValue::U16(_) => ValueType::U16,
            MetaValue::I16(_) => ValueType::I16,
            MetaValue::U32(_) => ValueType::U32,
            MetaValue::I32(_) => ValueType::I32,
            MetaValue::F32(_) => ValueType::F32,
            MetaValue::Bool(_) => ValueType::Bool,
            MetaValue::String(_) => ValueType::String,
            MetaValue::Array { .. } => ValueType::Array,
            MetaValue::U64(_) => ValueType::U64,
            MetaValue::I64(_) => ValueType::I64,
            MetaValue::F64(_) => ValueType::F64,
        }
    }

    /// A STRING array from anything that yields strings.
    pub fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Self {
        MetaValue::Array {
            elem: ValueType::String,
            items: items
                .into_iter()
                .map(|s| MetaValue::String(s.into()))
                .collect(),
        }
    }

    fn check(&self, key: &str) -> Result<(), GgufError> {
        if let MetaValue::Array { elem, items } = self {
            for item in items {
                if item.value_type() != *elem {
                    return Err(misuse(format!(
                        "array \"{key}\" is declared {elem} but holds a {}",
                        item.value_type()
                    )));
                }
                item.check(key)?;
            }
        }
        Ok(())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            MetaValue::U8(v) => out.push(*v),
            MetaValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::Bool(v) => out.push(u8::from(*v)),
            MetaValue::String(s) => encode_str(s, out),
            MetaValue::Array { elem, items } => {
                out.extend_from_slice(&elem.id().to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for item in items {
                    item.encode(out);
                }
            }
            MetaValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
}

fn encode_str(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn misuse(problem: String) -> GgufError {
    GgufError::WriterMisuse { problem }
}

#[derive(Debug, Clone)]
struct Declared {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    offset: u64,
    size: u64,
}

/// Collects metadata and tensor declarations; [`GgufBuilder::start`] writes the header.
#[derive(Debug, Clone)]
pub struct GgufBuilder {
    alignment: u64,
    kvs: Vec<(String, MetaValue)>,
    keys: HashSet<String>,
    tensors: Vec<Declared>,
    names: HashSet<String>,
    data_len: u64,
}

impl Default for GgufBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufBuilder {
    /// An empty file with the default alignment (32).
    pub fn new() -> Self {
        GgufBuilder {
            alignment: DEFAULT_ALIGNMENT,
            kvs: Vec::new(),
            keys: HashSet::new(),
            tensors: Vec::new(),
            names: HashSet::new(),
            data_len: 0,
        }
    }

    /// Sets the alignment (a power of two up to 1 MiB) and writes `general.alignment`.
    /// Call before declaring tensors.
    pub fn alignment(&mut self, alignment: u32) -> Result<&mut Self, GgufError> {
        let a = u64::from(alignment);
        if !a.is_power_of_two() || a > MAX_ALIGNMENT {
            return Err(misuse(format!(
                "alignment {alignment} is not a power of two up to 1 MiB"
            )));
        }
        if !self.tensors.is_empty() {
            return Err(misuse("set the alignment before declaring tensors".into()));
        }
        self.alignment = a;
        self.kvs.retain(|(k, _)| k != "general.alignment");
        self.keys.insert("general.alignment".into());
        self.kvs
            .push(("general.alignment".into(), MetaValue::U32(alignment)));
        Ok(self)
    }

    /// Adds a metadata entry; keys must be non-empty and unique.
    pub fn metadata(&mut self, key: &str, value: MetaValue) -> Result<&mut Self, GgufError> {
        if key.is_empty() {
            return Err(misuse("metadata keys must not be empty".into()));
        }
        if key == "general.alignment" {
            return match value {
                MetaValue::U32(a) => self.alignment(a),
                _ => Err(misuse("general.alignment must be a UINT32".into())),
            };
        }
        if !self.keys.insert(key.to_string()) {
            return Err(misuse(format!("duplicate metadata key \"{key}\"")));
        }
        value.check(key)?;
        self.kvs.push((key.to_string(), value));
        Ok(self)
    }

    /// Declares the next tensor; its data must be written in declaration order.
    /// Returns its byte size.
    pub fn tensor(
        &mut self,
        name: &str,
        dims: &[u64],
        ggml_type: GgmlType,
    ) -> Result<u64, GgufError> {
        if name.is_empty() || name.len() as u64 > MAX_TENSOR_NAME {
            return Err(misuse(format!(
                "tensor name \"{name}\" must be 1 to 64 bytes"
            )));
        }
        if dims.len() > MAX_DIMS as usize {
            return Err(misuse(format!("tensor \"{name}\" has more than 4 dims")));
        }
        if !self.names.insert(name.to_string()) {
            return Err(misuse(format!("duplicate tensor name \"{name}\"")));
        }
        let n = dims
            .iter()
            .try_fold(1u64, |acc, &d| {
                acc.checked_mul(d).filter(|&n| n <= i64::MAX as u64)
            })
            .ok_or_else(|| misuse(format!("tensor \"{name}\" element count overflows")))?;
        let size = ggml_type
            .byte_size(dims.first().copied().unwrap_or(1), n)
            .map_err(|e| misuse(format!("tensor \"{name}\" of type {ggml_type}: {e:?}")))?;
        let offset = self
            .data_len
            .checked_next_multiple_of(self.alignment)
            .ok_or_else(|| misuse("data section overflows".into()))?;
        self.data_len = offset
            .checked_add(size)
            .ok_or_else(|| misuse("data section overflows".into()))?;
        self.tensors.push(Declared {
            name: name.to_string(),
            dims: dims.to_vec(),
            ggml_type,
            offset,
            size,
        });
        Ok(size)
    }

    /// Total file length this builder will produce (header, padding, data, final padding).
    pub fn file_len(&self) -> u64 {
        let head = self.encode_head().len() as u64;
        let data_start = head.next_multiple_of(self.alignment);
        data_start + self.data_len.next_multiple_of(self.alignment)
    }

    fn encode_head(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for (key, value) in &self.kvs {
            encode_str(key, &mut out);
            out.extend_from_slice(&value.value_type().id().to_le_bytes());
            value.encode(&mut out);
        }
        for t in &self.tensors {
            encode_str(&t.name, &mut out);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ggml_type.id().to_le_bytes());
            out.extend_from_slice(&t.offset.to_le_bytes());
        }
        out
    }

    /// Writes the header, metadata, tensor table and padding to `out`, then
    /// returns a writer that takes the tensor data.
    pub fn start<W: Write>(&self, mut out: W) -> Result<GgufWriter<W>, GgufError> {
        let mut head = self.encode_head();
        let padded = (head.len() as u64).next_multiple_of(self.alignment);
        head.resize(padded as usize, 0);
        out.write_all(&head).map_err(write_err)?;
        Ok(GgufWriter {
            out,
            alignment: self.alignment,
            tensors: self.tensors.clone(),
            current: 0,
            written: 0,
            pos: 0,
        })
    }
}

fn write_err(source: std::io::Error) -> GgufError {
    GgufError::Io {
        path: "<writer>".into(),
        source,
    }
}

/// Takes tensor data in declaration order, in chunks of any size.
#[derive(Debug)]
pub struct GgufWriter<W: Write> {
    out: W,
    alignment: u64,
    tensors: Vec<Declared>,
    current: usize,
    written: u64,
    /// Bytes written into the data section so far (including padding).
    pos: u64,
}

const ZEROS: [u8; 4096] = [0; 4096];

impl<W: Write> GgufWriter<W> {
    /// Appends `chunk` to the data of the current tensor, moving on to the next one
    /// when the current one is complete. A chunk may not span two tensors.
    pub fn write_data(&mut self, chunk: &[u8]) -> Result<(), GgufError> {
        while self
            .tensors
            .get(self.current)
            .is_some_and(|t| self.written == t.size)
            && !chunk.is_empty()
        {
            self.current += 1;
            self.written = 0;
        }
        let Some(t) = self.tensors.get(self.current) else {
            return Err(misuse(
                "more data written than the declared tensors hold".into(),
            ));
        };
        let (offset, left) = (t.offset, t.size - self.written);
        if chunk.len() as u64 > left {
            return Err(misuse(format!(
                "{} bytes written to tensor \"{}\" which has {left} bytes left",
                chunk.len(),
                t.name
            )));
        }
        if self.written == 0 {
            self.pad_to(offset)?;
        }
        self.out.write_all(chunk).map_err(write_err)?;
        self.written += chunk.len() as u64;
        self.pos += chunk.len() as u64;
        Ok(())
    }

    /// Name and byte size of the tensor the next `write_data` goes to.
    pub fn current_tensor(&self) -> Option<(&str, u64)> {
        let mut i = self.current;
        if self.tensors.get(i).is_some_and(|t| self.written == t.size) {
            i += 1;
        }
        self.tensors.get(i).map(|t| (t.name.as_str(), t.size))
    }

    fn pad_to(&mut self, target: u64) -> Result<(), GgufError> {
        while self.pos < target {
            let n = (target - self.pos).min(ZEROS.len() as u64);
            self.out
                .write_all(&ZEROS[..n as usize])
                .map_err(write_err)?;
            self.pos += n;
        }
        Ok(())
    }

    /// Checks that every tensor got all its bytes, writes the final padding and
    /// returns the output.
    pub fn finish(mut self) -> Result<W, GgufError> {
        let complete = |t: &Declared, i: usize| {
            i < self.current || (i == self.current && self.written == t.size)
        };
        if let Some((i, t)) = self
            .tensors
            .iter()
            .enumerate()
            .find(|&(i, t)| !complete(t, i) && t.size > 0)
        {
            let got = if i == self.current { self.written } else { 0 };
            return Err(misuse(format!(
                "tensor \"{}\" got {got} of its {} bytes",
                t.name, t.size
            )));
        }
        let end = self.pos.next_multiple_of(self.alignment);
        self.pad_to(end)?;
        self.out.flush().map_err(write_err)?;
        Ok(self.out)
    }
}
