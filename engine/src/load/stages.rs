//! Steps shared by the blocking and the async pipelines.

use std::io::{self, Read};

use memmap2::{Advice, Mmap};

use super::error::LoadError;
use super::gate::GateStop;
use super::mode::LoadMode;
use super::model::{LoadStats, LoadedModel, OwnedData, TensorData};
use super::options::LoadOptions;
use super::progress::{Clock, Run, Stage};
use crate::gguf::{GgufError, OwnedGgufHead};
use crate::preflight::{self, Outcome, Preflight, ResidentEstimate};

pub(crate) fn gate_error<C: Clock>(run: &Run<C>, stop: GateStop) -> LoadError {
    match stop {
        GateStop::TimedOut => run.timed_out(),
        GateStop::Cancelled => run.cancelled(),
    }
}

pub(crate) fn io_error(what: &str, stage: Stage, source: io::Error) -> LoadError {
    LoadError::Io {
        what: what.to_string(),
        stage,
        source,
    }
}

/// A reader that checks deadline and cancel before every `read` and reports bytes, so
/// the header read (driven by the parser's own loop) stops on time too.
pub(crate) struct Checked<'r, R, C: Clock> {
    pub(crate) inner: R,
    pub(crate) run: &'r mut Run<C>,
    pub(crate) pos: u64,
    pub(crate) stop: Option<LoadError>,
}

impl<R: Read, C: Clock> Read for Checked<'_, R, C> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Err(e) = self.run.check() {
            self.stop = Some(e);
            return Err(io::Error::other("load stopped"));
        }
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        if let Err(e) = self.run.reach(self.pos) {
            self.stop = Some(e);
            return Err(io::Error::other("load stopped"));
        }
        Ok(n)
    }
}

/// Reads and parses the head through [`Checked`], mapping its errors back.
pub(crate) fn read_head<R: Read, C: Clock>(
    run: &mut Run<C>,
    reader: R,
    file_len: u64,
    what: &str,
) -> Result<OwnedGgufHead, LoadError> {
    let mut checked = Checked {
        inner: reader,
        run,
        pos: 0,
        stop: None,
    };
    let result = OwnedGgufHead::read_from(&mut checked, file_len);
    let (stop, pos) = (checked.stop.take(), checked.pos);
    match result {
        Ok(head) => Ok(head),
        Err(_) if stop.is_some() => Err(stop.unwrap_or_else(|| run.cancelled())),
        Err(GgufError::Io { source, .. }) if source.kind() == io::ErrorKind::UnexpectedEof => {
            Err(LoadError::Truncated {
                what: what.to_string(),
                stage: Stage::Header,
                got: pos,
                expected: file_len,
            })
        }
        Err(GgufError::Io { source, .. }) => Err(io_error(what, Stage::Header, source)),
        Err(e) => Err(LoadError::Invalid { source: e }),
    }
}

/// Metadata and tensor-index stages (the parse already ran), then the memory check.
pub(crate) fn index_stages<C: Clock>(
    run: &mut Run<C>,
    head: &OwnedGgufHead,
    opts: &LoadOptions,
) -> Result<(u64, Option<Preflight>), LoadError> {
    run.enter(Stage::Metadata)?;
    let view = head.head();
    let data_offset = view.tensor_data_offset();
    let infos = view.tensor_infos();
    run.set_tensors(
        infos
            .iter()
            .map(|t| {
                data_offset
                    .saturating_add(t.offset())
                    .saturating_add(t.size_bytes())
            })
            .collect(),
    );
    run.enter(Stage::TensorIndex)?;
    let tensor_bytes = infos
        .iter()
        .fold(0u64, |acc, t| acc.saturating_add(t.size_bytes()));
    let Some(root) = &opts.memcheck else {
        return Ok((tensor_bytes, None));
    };
    let estimate = ResidentEstimate::new(
        opts.mode,
        infos.iter().map(|t| t.size_bytes()),
        view.file_len().saturating_sub(tensor_bytes),
    );
    let report = preflight::check(&estimate, root);
    if report.outcome == Outcome::Tight {
        return Err(LoadError::WontFit {
            preflight: Box::new(report),
        });
    }
    Ok((tensor_bytes, Some(report)))
}

/// Reports the run's final event and assembles the model, so that every pipeline (path
/// or reader, blocking or async) states its stats the same way. `indexed` is what
/// [`index_stages`] returned.
pub(crate) fn finish<C: Clock>(
    mut run: Run<C>,
    head: OwnedGgufHead,
    data: TensorData,
    mode: LoadMode,
    file_bytes: u64,
    indexed: (u64, Option<Preflight>),
) -> LoadedModel {
    run.finish();
    let (tensor_bytes, preflight) = indexed;
    LoadedModel {
        head,
        data,
        mode,
        stats: LoadStats {
            elapsed: run.elapsed(),
            file_bytes,
            tensor_bytes,
            preflight,
        },
    }
}

/// Allocates the owned data section and copies in the data bytes the head read
/// already pulled in. Returns the buffer and how much of it is filled.
pub(crate) fn start_owned(
    head: &OwnedGgufHead,
    file_len: u64,
    what: &str,
) -> Result<(OwnedData, usize), LoadError> {
    let view = head.head();
    let data_offset = view.tensor_data_offset();
    let too_big = || {
        io_error(
            what,
            Stage::Read,
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                "data section exceeds the address space",
            ),
        )
    };
    let data_len = usize::try_from(file_len.saturating_sub(data_offset)).map_err(|_| too_big())?;
    let align = usize::try_from(view.alignment()).map_err(|_| too_big())?;
    let mut owned = OwnedData::new(data_len, align).map_err(|e| io_error(what, Stage::Read, e))?;
    let start = usize::try_from(data_offset).map_err(|_| too_big())?;
    let already = head.bytes().get(start..).unwrap_or(&[]);
    let n = already.len().min(data_len);
    owned.as_mut_slice()[..n].copy_from_slice(&already[..n]);
    Ok((owned, n))
}

/// Makes `[off, off + len)` of the map resident without a fault per page.
///
/// `MADV_POPULATE_READ` (Linux 5.14+) maps the pages in one call; older kernels get
/// `MADV_WILLNEED` (read-ahead) plus one read per page.
pub(crate) fn populate(map: &Mmap, off: usize, len: usize) -> io::Result<()> {
    match map.advise_range(Advice::PopulateRead, off, len) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let _ = map.advise_range(Advice::WillNeed, off, len);
            let touched = map[off..off + len]
                .iter()
                .step_by(4096)
                .fold(0u8, |acc, &b| acc ^ b);
            std::hint::black_box(touched);
            Ok(())
        }
        Err(e) => Err(e),
    }
}
