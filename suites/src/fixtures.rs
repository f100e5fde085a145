//! Cached fixture models shared by every suite.
//!
//! nextest runs each test in its own process, so a fixture is generated once per
//! checkout into `<target dir>/gauntlet-fixtures/<preset>-<format>-s<seed>-g<version>.gguf`
//! (the key changes whenever the generator's output would) and reused afterwards.
//! Generation runs under an exclusive lock on a sibling `.lock` file and ends with an
//! atomic rename, so many processes asking at once produce one file and nobody
//! reads a half-written one.
//!
//! The `bitnet-2b4t` preset needs about 1.8 GiB of disk. Where the cache's file
//! system has less free, [`path_or_skip`] prints one `SKIP` line instead of filling
//! the disk (a shared CI host's disk is not ours to fill), and
//! `GAUNTLET_REQUIRE_LARGE_FIXTURES=1` turns that skip into a failure.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gauntlet_engine::fixture::{FixtureError, FixtureSpec, Preset, WeightFormat};

/// How long to wait for another process that is generating the same fixture. The
/// largest preset takes well under a minute on a laptop; this leaves room for a
/// slow CI disk.
pub const LOCK_WAIT: Duration = Duration::from_secs(600);

/// Why a cached fixture could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum FixtureCacheError {
    /// Creating the cache directory or lock file failed.
    #[error("fixture cache {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Another process held the lock for longer than [`LOCK_WAIT`].
    #[error(
        "waited {waited:?} for the lock on {path}; another test process is stuck generating it (delete the .lock file's holder or the cache directory)"
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// Generation failed.
    #[error(transparent)]
    Generate(#[from] FixtureError),
}

/// The directory holding cached fixtures: `$CARGO_TARGET_DIR/gauntlet-fixtures` when
/// set, else the workspace's `target/gauntlet-fixtures`.
pub fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    target.join("gauntlet-fixtures")
}

/// Path of the cached fixture for `(preset, format, seed)`, generating it first if
/// this checkout does not have it yet.
///
/// # Panics
/// When the fixture cannot be generated; meant for tests, where that is a failure
/// with the reason in the message. Use [`try_path`] to handle it.
pub fn path(preset: Preset, format: WeightFormat, seed: u64) -> PathBuf {
    match try_path(preset, format, seed) {
        Ok(p) => p,
        Err(e) => panic!("cannot provide fixture {preset}/{format}/seed {seed}: {e}"),
    }
}

/// The variable that turns [`path_or_skip`]'s skip into a failure.
pub const REQUIRE_VAR: &str = "GAUNTLET_REQUIRE_LARGE_FIXTURES";

/// Like [`path`], but where the disk has too little free space for the fixture it
/// prints `SKIP <reason>` and returns `None`, so the calling test can return early;
/// under `GAUNTLET_REQUIRE_LARGE_FIXTURES=1` it panics instead. Any other failure
/// panics, as in [`path`].
pub fn path_or_skip(preset: Preset, format: WeightFormat, seed: u64) -> Option<PathBuf> {
    let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1");
    match try_path(preset, format, seed) {
        Ok(p) => Some(p),
        Err(FixtureCacheError::Generate(e @ FixtureError::NoSpace { .. })) if !required => {
            println!("SKIP {e}");
            None
        }
        Err(e) => panic!("cannot provide fixture {preset}/{format}/seed {seed}: {e}"),
    }
}

/// Like [`path`] but returns the error.
pub fn try_path(
    preset: Preset,
    format: WeightFormat,
    seed: u64,
) -> Result<PathBuf, FixtureCacheError> {
    let spec = FixtureSpec {
        preset,
        format,
        seed,
    };
    provide_in(&cache_dir(), &spec)
}

/// Provides `spec`'s fixture inside `dir`, generating it under the lock if missing.
pub fn provide_in(dir: &Path, spec: &FixtureSpec) -> Result<PathBuf, FixtureCacheError> {
    let key = spec.cache_key();
    let target = dir.join(format!("{key}.gguf"));
    // Fast path: a finished fixture only ever appears through the atomic rename.
    if target.is_file() {
        return Ok(target);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FixtureCacheError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let lock_path = dir.join(format!("{key}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    lock_with_deadline(&lock, &lock_path, LOCK_WAIT)?;
    // Someone else may have finished while we waited.
    if !target.is_file() {
        spec.write_file(&target)?;
    }
    // Dropping the file releases the lock.
    drop(lock);
    Ok(target)
}

/// `File::lock` blocks forever; poll `try_lock` instead so the wait has a deadline.
/// The poll interval grows to 100 ms: the holder is generating a file that takes
/// seconds, so finer polling would only burn CPU.
fn lock_with_deadline(file: &File, path: &Path, limit: Duration) -> Result<(), FixtureCacheError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(source)) => {
                return Err(FixtureCacheError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        let waited = start.elapsed();
        if waited >= limit {
            return Err(FixtureCacheError::LockTimeout {
                path: path.to_path_buf(),
                waited,
            });
        }
        std::thread::sleep(pause.min(limit - waited));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(seed: u64) -> FixtureSpec {
        FixtureSpec {
            preset: Preset::Tiny,
            format: WeightFormat::Tq2_0,
            seed,
        }
    }

    #[test]
    fn concurrent_callers_get_one_identical_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| provide_in(dir.path(), &tiny(9)).expect("provided")))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect()
        });
        assert!(paths.windows(2).all(|w| w[0] == w[1]));
        let expected = tiny(9).write_to(Vec::new()).expect("writes");
        assert_eq!(std::fs::read(&paths[0]).expect("read"), expected);
        let gguf_files = std::fs::read_dir(dir.path())
            .expect("list")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "gguf"))
            })
            .count();
        assert_eq!(gguf_files, 1);
    }

    #[test]
    fn an_existing_fixture_is_never_regenerated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = provide_in(dir.path(), &tiny(2)).expect("provided");
        let before = std::fs::metadata(&first)
            .and_then(|m| m.modified())
            .expect("mtime");
        let again = provide_in(dir.path(), &tiny(2)).expect("provided");
        let after = std::fs::metadata(&again)
            .and_then(|m| m.modified())
            .expect("mtime");
        assert_eq!((first, before), (again, after));
    }

    #[test]
    fn a_held_lock_times_out_with_the_lock_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock_path = dir.path().join("x.lock");
        let holder = File::create(&lock_path).expect("create");
        holder.lock().expect("first lock");
        let waiter = File::open(&lock_path).expect("open");
        let err =
            lock_with_deadline(&waiter, &lock_path, Duration::from_millis(20)).expect_err("held");
        assert!(err.to_string().contains("x.lock"), "{err}");
    }
}
