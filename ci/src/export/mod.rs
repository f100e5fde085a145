//! Exports of recorded runs to other tools' formats.

pub mod bmf;
pub mod gab;
pub mod junit;
