//! Opening a GGUF file from a path: fstat, regular-file check, mmap, parse.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::error::GgufError;
use super::head::Gguf;
use super::parse::{GgufIndex, parse_index};

/// A GGUF file mapped into memory and validated; [`MappedGguf::gguf`] borrows a view.
#[derive(Debug)]
pub struct MappedGguf {
    path: PathBuf,
    /// `None` for an empty file, which cannot be mapped (and fails to parse anyway).
    map: Option<Mmap>,
    index: GgufIndex,
}

impl MappedGguf {
    /// Opens, fstats (on the same descriptor, so the checked file is the mapped file),
    /// rejects anything but a regular file, maps it read-only and parses it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref();
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(GgufError::NotRegularFile {
                path: path.to_path_buf(),
                kind: file_kind(&meta.file_type()),
            });
        }
        let len = meta.len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the map is read-only and private to this value. Another process
            // truncating or rewriting the file while it is mapped can still change
            // the bytes under us (SIGBUS on truncation); that is the documented
            // contract of every mmap-based model loader, llama.cpp's included.
            Some(unsafe { Mmap::map(&file) }.map_err(io)?)
        };
        let bytes: &[u8] = map.as_deref().unwrap_or(&[]);
        let index = parse_index(bytes, bytes.len() as u64)?;
        Ok(MappedGguf {
            path: path.to_path_buf(),
            map,
            index,
        })
    }

    /// A view of the validated file, with zero-copy tensor data.
    pub fn gguf(&self) -> Gguf<'_> {
        self.index.view(self.map.as_deref().unwrap_or(&[]))
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The mapped length in bytes.
    pub fn len(&self) -> u64 {
        self.index.file_len
    }

    /// True for an empty mapping (never the case for a valid file).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_char_device() {
        "character device"
    } else {
        "non-regular file"
    }
}
