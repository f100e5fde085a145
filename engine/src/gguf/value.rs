//! Metadata values: the 13 GGUF value types, borrowed scalars and lazily decoded arrays.
//!
//! Arrays are not materialised at parse time: a 262,144-entry tokenizer vocabulary
//! is walked once for validation and then kept as a byte range; [`Array::iter`]
//! decodes elements on demand.

use std::fmt;

/// The type tag of a metadata value (GGUF `gguf_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// 0
    U8,
    /// 1
    I8,
    /// 2
    U16,
    /// 3
    I16,
    /// 4
    U32,
    /// 5
    I32,
    /// 6
    F32,
    /// 7
    Bool,
    /// 8
    String,
    /// 9
    Array,
    /// 10
    U64,
    /// 11
    I64,
    /// 12
    F64,
}

impl ValueType {
    /// Decodes a type id; `None` outside 0..=12.
    pub fn from_id(id: u32) -> Option<Self> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The id stored in files.
    pub fn id(self) -> u32 {
        use ValueType::*;
        match self {
            U8 => 0,
            I8 => 1,
            U16 => 2,
            I16 => 3,
            U32 => 4,
            I32 => 5,
            F32 => 6,
            Bool => 7,
            String => 8,
            Array => 9,
            U64 => 10,
            I64 => 11,
            F64 => 12,
        }
    }

    /// The name the GGUF spec uses, e.g. `"UINT32"`.
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "UINT8",
            I8 => "INT8",
            U16 => "UINT16",
            I16 => "INT16",
            U32 => "UINT32",
            I32 => "INT32",
            F32 => "FLOAT32",
            Bool => "BOOL",
            String => "STRING",
            Array => "ARRAY",
            U64 => "UINT64",
            I64 => "INT64",
            F64 => "FLOAT64",
        }
    }

    /// Encoded size of one value, for the fixed-size types.
    pub fn fixed_size(self) -> Option<u64> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// Fewest bytes one value of this type can take; bounds counts read from a file.
    pub(crate) fn min_size(self) -> u64 {
        match self {
            ValueType::String => 8,
            ValueType::Array => 12,
            t => t.fixed_size().unwrap_or(1),
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value, borrowing strings and array bytes from the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
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
    /// STRING (validated UTF-8)
    String(&'a str),
    /// ARRAY
    Array(Array<'a>),
    /// UINT64
    U64(u64),
    /// INT64
    I64(i64),
    /// FLOAT64
    F64(f64),
}

impl<'a> Value<'a> {
    /// The value's type tag.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// A type description for messages: `UINT32`, or `ARRAY[STRING]`.
    pub fn type_description(&self) -> String {
        match self {
            Value::Array(a) => format!("ARRAY[{}]", a.element_type()),
            v => v.value_type().name().to_string(),
        }
    }

    /// Decodes one value of type `ty` from the front of `bytes`, returning it and the
    /// bytes it used. Only called on ranges the parser validated, so `None` means an
    /// internal inconsistency rather than bad input.
    pub(crate) fn decode(ty: ValueType, bytes: &'a [u8], offset: u64) -> Option<(Self, usize)> {
        fn arr<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
            b.get(..N)?.try_into().ok()
        }
        Some(match ty {
            ValueType::U8 => (Value::U8(*bytes.first()?), 1),
            ValueType::I8 => (Value::I8(*bytes.first()? as i8), 1),
            ValueType::Bool => (Value::Bool(*bytes.first()? != 0), 1),
            ValueType::U16 => (Value::U16(u16::from_le_bytes(arr(bytes)?)), 2),
            ValueType::I16 => (Value::I16(i16::from_le_bytes(arr(bytes)?)), 2),
            ValueType::U32 => (Value::U32(u32::from_le_bytes(arr(bytes)?)), 4),
            ValueType::I32 => (Value::I32(i32::from_le_bytes(arr(bytes)?)), 4),
            ValueType::F32 => (Value::F32(f32::from_le_bytes(arr(bytes)?)), 4),
            ValueType::U64 => (Value::U64(u64::from_le_bytes(arr(bytes)?)), 8),
            ValueType::I64 => (Value::I64(i64::from_le_bytes(arr(bytes)?)), 8),
            ValueType::F64 => (Value::F64(f64::from_le_bytes(arr(bytes)?)), 8),
            ValueType::String => {
                let len = usize::try_from(u64::from_le_bytes(arr(bytes)?)).ok()?;
                let s = std::str::from_utf8(bytes.get(8..8usize.checked_add(len)?)?).ok()?;
                (Value::String(s), 8 + len)
            }
            ValueType::Array => {
                let elem = ValueType::from_id(u32::from_le_bytes(arr(bytes)?))?;
                let len = u64::from_le_bytes(arr(bytes.get(4..)?)?);
                let body = bytes.get(12..)?;
                let used = encoded_len(elem, len, body)?;
                let array = Array {
                    elem,
                    len,
                    bytes: body.get(..used)?,
                    offset: offset + 12,
                };
                (Value::Array(array), 12 + used)
            }
        })
    }
}

/// Bytes taken by `len` already-validated values of type `elem` at the front of `body`.
fn encoded_len(elem: ValueType, len: u64, body: &[u8]) -> Option<usize> {
    if let Some(size) = elem.fixed_size() {
        return usize::try_from(len.checked_mul(size)?).ok();
    }
    let mut pos = 0usize;
    for _ in 0..len {
        let rest = body.get(pos..)?;
        let (_, used) = Value::decode(elem, rest, 0)?;
        pos = pos.checked_add(used)?;
    }
    Some(pos)
}

/// An array value: its element type, length and the bytes of its elements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Array<'a> {
    elem: ValueType,
    len: u64,
    bytes: &'a [u8],
    offset: u64,
}

impl<'a> Array<'a> {
    /// The element type.
    pub fn element_type(&self) -> ValueType {
        self.elem
    }

    /// Number of elements.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty array.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Absolute file offset of the first element.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The raw little-endian bytes of the elements (e.g. to reinterpret a FLOAT32 array).
    pub fn raw_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Decodes the elements one by one.
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter {
            elem: self.elem,
            remaining: self.len,
            bytes: self.bytes,
            offset: self.offset,
        }
    }

    /// The elements as strings, for STRING arrays (`None` otherwise).
    pub fn strings(&self) -> Option<impl Iterator<Item = &'a str> + 'a> {
        (self.elem == ValueType::String).then(|| {
            self.iter().map(|v| match v {
                Value::String(s) => s,
                _ => "",
            })
        })
    }
}

/// Iterator over an [`Array`]'s elements.
#[derive(Debug, Clone)]
pub struct ArrayIter<'a> {
    elem: ValueType,
    remaining: u64,
    bytes: &'a [u8],
    offset: u64,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        if self.remaining == 0 {
            return None;
        }
        let (value, used) = Value::decode(self.elem, self.bytes, self.offset)?;
        self.remaining -= 1;
        self.bytes = self.bytes.get(used..)?;
        self.offset += used as u64;
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_id_round_trips() {
        for id in 0..=12 {
            let t = ValueType::from_id(id).expect("ids 0..=12 are defined");
            assert_eq!(t.id(), id);
        }
        assert_eq!(ValueType::from_id(13), None);
    }

    #[test]
    fn string_array_decodes_lazily() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&8u32.to_le_bytes());
        bytes.extend_from_slice(&2u64.to_le_bytes());
        for s in ["ab", "c"] {
            bytes.extend_from_slice(&(s.len() as u64).to_le_bytes());
            bytes.extend_from_slice(s.as_bytes());
        }
        let (v, used) = Value::decode(ValueType::Array, &bytes, 100).expect("valid");
        assert_eq!(used, bytes.len());
        let Value::Array(a) = v else {
            panic!("not an array: {v:?}")
        };
        assert_eq!(a.offset(), 112);
        let got: Vec<&str> = a.strings().expect("string array").collect();
        assert_eq!(got, ["ab", "c"]);
    }
}
