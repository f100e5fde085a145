//! Timed model loading: deadlines, progress events, cooperative cancellation.

mod mode;

pub use mode::LoadMode;
