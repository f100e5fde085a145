//! Criterion benches for the ternary kernels (filled in below).
fn main() {}
