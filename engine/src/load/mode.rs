//! How a model's tensor bytes become resident.

use std::fmt;
use std::str::FromStr;

/// How the loader makes tensor bytes resident.
///
/// The choice matters for memory accounting: [`LoadMode::Read`] copies every tensor byte
/// into anonymous memory, which a memory cgroup can only satisfy or OOM-kill, while
/// [`LoadMode::Mmap`] maps the file and pre-faults its pages, which are page cache the
/// kernel may evict and re-read under pressure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LoadMode {
    /// Map the file, then populate it chunk by chunk so the first inference does not
    /// page-fault. Needs a seekable, mappable file.
    #[default]
    Mmap,
    /// Copy into owned, page-aligned memory from any reader (pipes, slow sources, sockets).
    Read,
}

impl LoadMode {
    /// The lower-case name used on the command line and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadMode::Mmap => "mmap",
            LoadMode::Read => "read",
        }
    }
}

impl fmt::Display for LoadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LoadMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "mmap" => Ok(LoadMode::Mmap),
            "read" => Ok(LoadMode::Read),
            _ => Err(format!(
                "unknown load mode {s:?}: expected \"mmap\" or \"read\""
            )),
        }
    }
}
