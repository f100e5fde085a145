//! Where environment facts come from: process variables and files under `/proc`, `/sys`, `/dev`,
//! read below a configurable root so tests can point detection at a fake tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The source of every fact [`Environment::detect_with`](super::Environment::detect_with) reads.
///
/// Detection never touches the process or the file system directly: it asks a probe. The
/// system probe reads the real variables below `/`; a fake probe reads a fixed variable map
/// and a directory tree made by a test (for example `tempfile`), so every detection branch
/// can be exercised on any machine.
#[derive(Debug, Clone)]
pub struct Probe {
    root: PathBuf,
    vars: Option<BTreeMap<String, String>>,
    miri: bool,
    cwd: Option<PathBuf>,
}

impl Probe {
    /// Reads the real process environment and the real file system.
    pub fn system() -> Self {
        Self {
            root: PathBuf::from("/"),
            vars: None,
            miri: cfg!(miri),
            cwd: None,
        }
    }

    /// Reads files below `root` (so `/proc/self/status` is `root/proc/self/status`) and only
    /// the variables added with [`Probe::var_set`]; the process environment is not consulted.
    pub fn fake(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            vars: Some(BTreeMap::new()),
            miri: false,
            cwd: Some(PathBuf::from("/")),
        }
    }

    /// Sets a variable seen by a fake probe (ignored by the system probe, which always reads
    /// the process environment).
    #[must_use]
    pub fn var_set(mut self, name: &str, value: &str) -> Self {
        if let Some(vars) = &mut self.vars {
            vars.insert(name.to_owned(), value.to_owned());
        }
        self
    }

    /// Declares whether the code runs under Miri (the system probe uses `cfg!(miri)`).
    #[must_use]
    pub fn miri(mut self, under_miri: bool) -> Self {
        self.miri = under_miri;
        self
    }

    /// The directory every absolute path is read below.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A variable's value; `None` when unset or not valid UTF-8.
    pub fn var(&self, name: &str) -> Option<String> {
        match &self.vars {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// Whether the code runs under Miri.
    pub fn under_miri(&self) -> bool {
        self.miri
    }

    /// Maps an absolute path of the probed system to the path read on this machine.
    pub fn host_path(&self, absolute: &Path) -> PathBuf {
        let relative = absolute.strip_prefix("/").unwrap_or(absolute);
        self.root.join(relative)
    }

    /// A file's text, or `None` when it is missing or unreadable (detection treats an
    /// unreadable fact as absent rather than failing).
    pub fn read(&self, absolute: impl AsRef<Path>) -> Option<String> {
        std::fs::read_to_string(self.host_path(absolute.as_ref())).ok()
    }

    /// Whether a file or directory exists.
    pub fn exists(&self, absolute: impl AsRef<Path>) -> bool {
        self.host_path(absolute.as_ref()).exists()
    }

    /// Names of the entries of a directory (empty when it is missing).
    pub fn list(&self, absolute: impl AsRef<Path>) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.host_path(absolute.as_ref())) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// Makes a path absolute against the probed process's working directory, lexically
    /// (without touching the file system, so fake trees work).
    pub fn absolute(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        let cwd = match &self.cwd {
            Some(cwd) => cwd.clone(),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        };
        cwd.join(path)
    }
}
