//! Generator of the malformed-file corpus (shared by the corpus tests).

/// A byte builder for hand-made GGUF files.
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// `GGUF`, version, tensor count, metadata count.
    pub fn header(version: u32, n_tensors: u64, n_kv: u64) -> Self {
        let mut b = Bytes(b"GGUF".to_vec());
        b.u32(version).u64(n_tensors).u64(n_kv);
        b
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }

    pub fn string(&mut self, s: &str) -> &mut Self {
        self.bytes_str(s.as_bytes())
    }

    pub fn bytes_str(&mut self, s: &[u8]) -> &mut Self {
        self.u64(s.len() as u64).raw(s)
    }

    /// A STRING metadata entry.
    pub fn kv_str(&mut self, key: &str, value: &str) -> &mut Self {
        self.string(key).u32(8).string(value)
    }

    /// A UINT32 metadata entry.
    pub fn kv_u32(&mut self, key: &str, value: u32) -> &mut Self {
        self.string(key).u32(4).u32(value)
    }

    /// A tensor table entry.
    pub fn tensor(&mut self, name: &str, dims: &[u64], type_id: u32, offset: u64) -> &mut Self {
        self.string(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(type_id).u64(offset)
    }

    /// Zero padding up to a multiple of `alignment`, then `n` data bytes.
    pub fn data(&mut self, alignment: usize, n: usize) -> &mut Self {
        let pad = self.0.len().next_multiple_of(alignment) - self.0.len();
        self.0.extend(std::iter::repeat_n(0u8, pad + n));
        self
    }

    pub fn done(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

/// A valid one-tensor file used as the base for data-section faults.
fn one_tensor(dims: &[u64], type_id: u32, offset: u64, data: usize) -> Vec<u8> {
    let mut b = Bytes::header(3, 1, 1);
    b.kv_str("general.architecture", "llama");
    b.tensor("w", dims, type_id, offset).data(32, data).done()
}

fn nested(depth: usize) -> Vec<u8> {
    let mut b = Bytes::header(3, 0, 1);
    b.string("deep").u32(9);
    for _ in 0..depth - 1 {
        b.u32(9).u64(1);
    }
    b.u32(0).u64(1).u8(7);
    b.done()
}

/// Every corpus file: (name, bytes). Names say which rule the file breaks.
pub fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut add = |name, bytes| v.push((name, bytes));

    add("empty_file", Vec::new());
    add("magic_cut_short", b"GG".to_vec());
    // Found by the fuzzer: a prefix parse of this once disagreed with the full parse.
    add("two_bytes_not_gguf", b"GF".to_vec());
    add(
        "bad_magic_ggml",
        Bytes(b"GGML".to_vec()).u32(3).u64(0).u64(0).done(),
    );
    add(
        "html_error_page",
        b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n<body><h1>Not Found</h1><p>The requested model was not found on this server.</p></body></html>\n"
            .to_vec(),
    );
    add(
        "git_lfs_pointer",
        b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146bd1e0d0f4b6ea6a5d8d0cbbc0a4d5f0b3c1b5b1f0b5d2a9f3f1c6e7a\nsize 1187801376\n"
            .to_vec(),
    );
    add(
        "big_endian_version",
        Bytes(b"GGUF".to_vec())
            .raw(&3u32.to_be_bytes())
            .u64(0)
            .u64(0)
            .done(),
    );
    add(
        "big_endian_magic",
        Bytes(b"FUGG".to_vec()).raw(&3u32.to_be_bytes()).done(),
    );
    add("version_1", Bytes::header(1, 0, 0).done());
    add("version_4", Bytes::header(4, 0, 0).done());
    add(
        "header_cut_in_counts",
        Bytes(b"GGUF".to_vec()).u32(3).u32(0).done(),
    );
    add("tensor_count_2_pow_60", Bytes::header(3, 1 << 60, 0).done());
    add(
        "metadata_count_2_pow_60",
        Bytes::header(3, 0, 1 << 60).done(),
    );
    add(
        "key_length_2_pow_62",
        Bytes::header(3, 0, 1).u64(1 << 62).raw(b"general.k").done(),
    );
    add(
        "string_value_longer_than_file",
        Bytes::header(3, 0, 1)
            .string("general.name")
            .u32(8)
            .u64(1 << 31)
            .raw(b"abc")
            .done(),
    );
    add(
        "array_2_pow_60_entries",
        Bytes::header(3, 0, 1)
            .string("tokenizer.ggml.scores")
            .u32(9)
            .u32(0)
            .u64(1 << 60)
            .done(),
    );
    add(
        "string_array_count_exceeds_bytes",
        Bytes::header(3, 0, 1)
            .string("tokenizer.ggml.tokens")
            .u32(9)
            .u32(8)
            .u64(1000)
            .string("a")
            .done(),
    );
    add("arrays_nested_9_deep", nested(9));
    add(
        "unknown_value_type",
        Bytes::header(3, 0, 1).string("k").u32(13).u32(0).done(),
    );
    add(
        "unknown_array_element_type",
        Bytes::header(3, 0, 1)
            .string("k")
            .u32(9)
            .u32(200)
            .u64(1)
            .u8(0)
            .done(),
    );
    add(
        "bool_value_2",
        Bytes::header(3, 0, 1).string("flag").u32(7).u8(2).done(),
    );
    add(
        "empty_key",
        Bytes::header(3, 0, 1).string("").u32(0).u8(0).done(),
    );
    add(
        "key_not_utf8",
        Bytes::header(3, 0, 1)
            .bytes_str(b"gen\xffal")
            .u32(0)
            .u8(0)
            .done(),
    );
    add(
        "string_value_not_utf8",
        Bytes::header(3, 0, 1)
            .string("general.name")
            .u32(8)
            .bytes_str(b"\xc3\x28")
            .done(),
    );
    add(
        "duplicate_key",
        Bytes::header(3, 0, 2)
            .kv_u32("general.x", 1)
            .kv_u32("general.x", 2)
            .done(),
    );
    add(
        "alignment_is_uint64",
        Bytes::header(3, 0, 1)
            .string("general.alignment")
            .u32(10)
            .u64(32)
            .done(),
    );
    add(
        "alignment_48",
        Bytes::header(3, 0, 1)
            .kv_u32("general.alignment", 48)
            .done(),
    );
    add(
        "alignment_0",
        Bytes::header(3, 0, 1).kv_u32("general.alignment", 0).done(),
    );
    add(
        "alignment_2_mib",
        Bytes::header(3, 0, 1)
            .kv_u32("general.alignment", 2 << 20)
            .done(),
    );
    add(
        "tensor_name_empty",
        Bytes::header(3, 1, 0)
            .tensor("", &[4], 0, 0)
            .data(32, 16)
            .done(),
    );
    add(
        "tensor_name_65_bytes",
        Bytes::header(3, 1, 0)
            .tensor(&"n".repeat(65), &[4], 0, 0)
            .data(32, 16)
            .done(),
    );
    add(
        "tensor_name_not_utf8",
        Bytes::header(3, 1, 0)
            .bytes_str(b"blk.\xfe")
            .u32(1)
            .u64(4)
            .u32(0)
            .u64(0)
            .data(32, 16)
            .done(),
    );
    add(
        "duplicate_tensor_name",
        Bytes::header(3, 2, 0)
            .tensor("w", &[4], 0, 0)
            .tensor("w", &[4], 0, 32)
            .data(32, 48)
            .done(),
    );
    add(
        "five_dims",
        Bytes::header(3, 1, 0)
            .tensor("w", &[1, 1, 1, 1, 1], 0, 0)
            .data(32, 4)
            .done(),
    );
    add("negative_dim", one_tensor(&[u64::MAX - 3], 0, 0, 0));
    add(
        "element_count_overflow",
        one_tensor(&[1 << 32, 1 << 32], 0, 0, 0),
    );
    add(
        "byte_size_overflow",
        one_tensor(&[1 << 31, 1 << 31], 0, 0, 0),
    );
    add("q8_0_row_not_block_multiple", one_tensor(&[33], 8, 0, 34));
    add("unknown_type_id_99", one_tensor(&[4], 99, 0, 16));
    add("removed_type_q4_2", one_tensor(&[32], 4, 0, 20));
    add(
        "bitnet_id_36_without_bitnet_arch",
        one_tensor(&[128], 36, 0, 64),
    );
    add("tensor_offset_misaligned", one_tensor(&[4], 0, 8, 24));
    add(
        "tensors_overlap",
        Bytes::header(3, 2, 0)
            .tensor("a", &[16], 0, 0)
            .tensor("b", &[16], 0, 32)
            .data(32, 96)
            .done(),
    );
    add("tensor_offset_past_eof", one_tensor(&[4], 0, 1 << 40, 16));
    add(
        "tensor_offset_near_u64_max",
        one_tensor(&[4], 0, u64::MAX - 31, 16),
    );
    add("truncated_mid_tensor", one_tensor(&[64], 0, 0, 100));
    add(
        "truncated_in_metadata_value",
        Bytes::header(3, 0, 2)
            .kv_u32("a", 1)
            .string("general.name")
            .u32(8)
            .u64(40)
            .raw(b"only part")
            .done(),
    );
    add(
        "truncated_in_tensor_table",
        Bytes::header(3, 1, 0)
            .string("w")
            .u32(2)
            .u64(4)
            .u64(4)
            .done(),
    );
    v
}
