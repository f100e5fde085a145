//! The blocking pipeline: runs on the caller's thread and spawns nothing.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use memmap2::Mmap;

use super::error::LoadError;
use super::gate::GatePermit;
use super::mode::LoadMode;
use super::model::{LoadedModel, TensorData};
use super::options::LoadOptions;
use super::progress::{Run, Stage, StdClock};
use super::stages::{finish, gate_error, index_stages, io_error, populate, read_head, start_owned};

/// Starts the run and waits for the load gate within the run's deadline, giving up
/// on cancel: both blocking pipelines are admitted the same way. Hold the permit for
/// the whole load.
fn admit(opts: &LoadOptions) -> Result<(Run<StdClock>, GatePermit), LoadError> {
    let mut run = Run::new(StdClock::start(), opts);
    run.enter(Stage::Queued)?;
    let token = opts.cancel.clone();
    let permit = opts
        .gate
        .acquire_blocking(run.remaining(), || token.is_cancelled())
        .map_err(|s| gate_error(&run, s))?;
    Ok((run, permit))
}

pub(crate) fn load_path(opts: &LoadOptions, path: &Path) -> Result<LoadedModel, LoadError> {
    let what = path.display().to_string();
    let (mut run, _permit) = admit(opts)?;

    run.enter(Stage::Open)?;
    let file = File::open(path).map_err(|e| io_error(&what, Stage::Open, e))?;
    // fstat on the descriptor we read, so the checked file is the loaded file.
    let meta = file
        .metadata()
        .map_err(|e| io_error(&what, Stage::Open, e))?;
    if !meta.is_file() {
        return Err(LoadError::NotRegularFile {
            path: path.to_path_buf(),
            kind: if meta.is_dir() {
                "directory"
            } else {
                "special file"
            },
        });
    }
    let file_len = meta.len();
    run.set_total(file_len);

    run.enter(Stage::Header)?;
    let head = read_head(&mut run, &file, file_len, &what)?;
    let indexed = index_stages(&mut run, &head, opts)?;

    let data = match opts.mode {
        LoadMode::Read => {
            run.enter(Stage::Read)?;
            let (mut owned, filled) = start_owned(&head, file_len, &what)?;
            let data_offset = head.head().tensor_data_offset();
            fill(
                &mut run,
                &mut &file,
                owned.as_mut_slice(),
                filled,
                data_offset,
                opts.chunk_size,
                &what,
            )?;
            TensorData::Owned(owned)
        }
        LoadMode::Mmap => {
            run.enter(Stage::Map)?;
            if file_len == 0 {
                TensorData::Empty
            } else {
                // SAFETY: read-only private map. A process truncating the file while it is
                // mapped can still SIGBUS readers; that is the contract of every mmap
                // model loader. Populate itself uses MADV_POPULATE_READ, which reports
                // EFAULT instead of faulting.
                let map =
                    unsafe { Mmap::map(&file) }.map_err(|e| io_error(&what, Stage::Map, e))?;
                drop(file);
                run.enter(Stage::Populate)?;
                let len = map.len();
                let chunk = opts.chunk_size.max(4096);
                let mut off = 0usize;
                while off < len {
                    let n = chunk.min(len - off);
                    populate(&map, off, n).map_err(|e| io_error(&what, Stage::Populate, e))?;
                    off += n;
                    run.reach(off as u64)?;
                }
                let data_offset = usize::try_from(head.head().tensor_data_offset()).unwrap_or(len);
                TensorData::Mapped { map, data_offset }
            }
        }
    };
    Ok(finish(run, head, data, opts.mode, file_len, indexed))
}

/// Any `Read + Seek` source always loads in read mode: there is nothing to map.
pub(crate) fn load_reader<R: Read + Seek>(
    opts: &LoadOptions,
    mut reader: R,
) -> Result<LoadedModel, LoadError> {
    let what = "reader";
    let (mut run, _permit) = admit(opts)?;

    run.enter(Stage::Open)?;
    let seek = |r: &mut R, to| r.seek(to).map_err(|e| io_error(what, Stage::Open, e));
    let file_len = seek(&mut reader, SeekFrom::End(0))?;
    seek(&mut reader, SeekFrom::Start(0))?;
    run.set_total(file_len);

    run.enter(Stage::Header)?;
    let head = read_head(&mut run, &mut reader, file_len, what)?;
    let indexed = index_stages(&mut run, &head, opts)?;
    run.enter(Stage::Read)?;
    let (mut owned, filled) = start_owned(&head, file_len, what)?;
    let data_offset = head.head().tensor_data_offset();
    fill(
        &mut run,
        &mut reader,
        owned.as_mut_slice(),
        filled,
        data_offset,
        opts.chunk_size,
        what,
    )?;
    Ok(finish(
        run,
        head,
        TensorData::Owned(owned),
        LoadMode::Read,
        file_len,
        indexed,
    ))
}

/// Fills `dst[filled..]` from `reader`, at most `chunk` bytes per `read` call, checking
/// deadline and cancel after every call.
fn fill<R: Read>(
    run: &mut Run<StdClock>,
    reader: &mut R,
    dst: &mut [u8],
    mut filled: usize,
    data_offset: u64,
    chunk: usize,
    what: &str,
) -> Result<(), LoadError> {
    let chunk = chunk.max(4096);
    while filled < dst.len() {
        let end = filled.saturating_add(chunk).min(dst.len());
        match reader.read(&mut dst[filled..end]) {
            Ok(0) => {
                return Err(LoadError::Truncated {
                    what: what.to_string(),
                    stage: Stage::Read,
                    got: data_offset + filled as u64,
                    expected: data_offset + dst.len() as u64,
                });
            }
            Ok(n) => {
                filled += n;
                run.reach(data_offset + filled as u64)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => run.check()?,
            Err(e) => return Err(io_error(what, Stage::Read, e)),
        }
    }
    Ok(())
}
