//! The async front doors.
//!
//! Paths go to the blocking pool (mapping and populating are blocking work); the
//! future owns a drop guard, so dropping it cancels the work, and it returns only
//! after that work has stopped, so a `TimedOut` means the memory is already freed.
//! Async readers are driven natively on tokio's clock: every read races the deadline
//! and the cancel token, so a stalled source cannot hold a load past its budget, and
//! tests on a paused clock run "2 GiB at 20 MB/s" in milliseconds.

use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt};

use super::error::LoadError;
use super::mode::LoadMode;
use super::model::{LoadedModel, TensorData};
use super::options::LoadOptions;
use super::progress::{Run, Stage, TokioClock};
use super::stages::{finish, gate_error, index_stages, io_error, start_owned};
use crate::gguf::{GgufError, GgufHead, OwnedGgufHead};

/// First prefix read: the header of almost every model fits.
const FIRST_READ: u64 = 1 << 20;

pub(crate) async fn load_path(opts: &LoadOptions, path: PathBuf) -> Result<LoadedModel, LoadError> {
    let mut opts = opts.clone();
    let token = opts.cancel.child_token();
    opts.cancel = token.clone();
    let guard = token.drop_guard();
    let joined =
        tokio::task::spawn_blocking(move || super::blocking::load_path(&opts, &path)).await;
    guard.disarm();
    joined.map_err(|e| LoadError::Task(e.to_string()))?
}

/// One read that gives up at the deadline or on cancel.
async fn read_some<R: AsyncRead + Unpin>(
    run: &Run<TokioClock>,
    reader: &mut R,
    buf: &mut [u8],
) -> Result<usize, LoadError> {
    let left = run.remaining();
    let expire = async {
        match left {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = reader.read(buf) => r.map_err(|e| io_error("reader", run.stage(), e)),
        _ = run.cancel_token().cancelled() => Err(run.cancelled()),
        _ = expire => Err(run.timed_out()),
    }
}

pub(crate) async fn load_reader<R: AsyncRead + AsyncSeek + Unpin + Send>(
    opts: &LoadOptions,
    mut reader: R,
) -> Result<LoadedModel, LoadError> {
    let what = "reader";
    let mut run = Run::new(TokioClock::start(), opts);
    run.enter(Stage::Queued)?;
    let _permit = opts
        .gate
        .acquire_async(run.remaining(), &opts.cancel)
        .await
        .map_err(|s| gate_error(&run, s))?;

    run.enter(Stage::Open)?;
    let file_len = reader
        .seek(std::io::SeekFrom::End(0))
        .await
        .map_err(|e| io_error(what, Stage::Open, e))?;
    reader
        .seek(std::io::SeekFrom::Start(0))
        .await
        .map_err(|e| io_error(what, Stage::Open, e))?;
    run.set_total(file_len);

    run.enter(Stage::Header)?;
    // Grow the prefix only as bytes arrive, doubling so re-parsing stays linear.
    let mut prefix: Vec<u8> = Vec::new();
    let mut want = FIRST_READ.min(file_len);
    let mut scratch = vec![0u8; 64 << 10];
    loop {
        while (prefix.len() as u64) < want {
            let room = usize::try_from(want - prefix.len() as u64).unwrap_or(usize::MAX);
            let n = room.min(scratch.len());
            let got = read_some(&run, &mut reader, &mut scratch[..n]).await?;
            if got == 0 {
                return Err(LoadError::Truncated {
                    what: what.to_string(),
                    stage: Stage::Header,
                    got: prefix.len() as u64,
                    expected: file_len,
                });
            }
            prefix.extend_from_slice(&scratch[..got]);
            run.reach(prefix.len() as u64)?;
        }
        match GgufHead::parse(&prefix, file_len) {
            Ok(_) => break,
            Err(GgufError::NeedMoreBytes { needed, .. }) => {
                want = needed.max(want.saturating_mul(2)).min(file_len);
            }
            Err(source) => return Err(LoadError::Invalid { source }),
        }
    }
    drop(scratch);
    // Re-parse into the owned form (the prefix is in memory; this is a copy and a parse).
    let head = OwnedGgufHead::read_from(&prefix[..], file_len)?;
    drop(prefix);
    let indexed = index_stages(&mut run, &head, opts)?;

    run.enter(Stage::Read)?;
    let (mut owned, mut filled) = start_owned(&head, file_len, what)?;
    let data_offset = head.head().tensor_data_offset();
    let chunk = opts.chunk_size.max(4096);
    let dst = owned.as_mut_slice();
    while filled < dst.len() {
        let end = filled.saturating_add(chunk).min(dst.len());
        let got = read_some(&run, &mut reader, &mut dst[filled..end]).await?;
        if got == 0 {
            return Err(LoadError::Truncated {
                what: what.to_string(),
                stage: Stage::Read,
                got: data_offset + filled as u64,
                expected: file_len,
            });
        }
        filled += got;
        run.reach(data_offset + filled as u64)?;
    }
    Ok(finish(
        run,
        head,
        TensorData::Owned(owned),
        LoadMode::Read,
        file_len,
        indexed,
    ))
}
