//! Exit codes shared by every subcommand, so scripts can tell failures apart.

use std::process::ExitCode;

/// Success.
pub const OK: u8 = 0;
/// An I/O error or another failure that is not the input's fault.
pub const IO: u8 = 1;
/// The input (model file, config, arguments) is invalid.
pub const INVALID: u8 = 2;
/// A deadline expired.
pub const TIMED_OUT: u8 = 3;
/// The work would not fit in memory and was refused before allocating.
pub const WONT_FIT: u8 = 4;
/// The work was cancelled (Ctrl-C).
pub const CANCELLED: u8 = 5;

/// The tests passed but something regressed (`gauntlet run --fail-on-regression`).
pub const REGRESSION: u8 = 6;

/// Converts one of the codes above into an [`ExitCode`].
pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
