//! Ternary (BitNet b1.58) weight formats and CPU/GPU kernels.
