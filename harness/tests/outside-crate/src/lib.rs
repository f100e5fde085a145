//! Nothing here: the point of this crate is its tests.
