//! Which kernel implementation runs: detection, the `GAUNTLET_KERNEL` override and
//! the typed refusal of a path this CPU cannot run.

use std::fmt;

use crate::error::KernelError;

/// One implementation of the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelPath {
    /// Portable scalar reference (the oracle).
    Scalar,
    /// AVX2 (+ F16C) `maddubs` kernels.
    Avx2,
    /// AVX-512 BW + VL + VNNI `dpbusd` kernels (with AVX2 and F16C, which every such
    /// CPU has, for the 256-bit and f16 steps).
    Avx512,
}

impl KernelPath {
    /// All paths, slowest first.
    pub const ALL: [KernelPath; 3] = [KernelPath::Scalar, KernelPath::Avx2, KernelPath::Avx512];

    /// The name `GAUNTLET_KERNEL` accepts.
    pub const fn name(self) -> &'static str {
        match self {
            KernelPath::Scalar => "scalar",
            KernelPath::Avx2 => "avx2",
            KernelPath::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            KernelPath::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The paths this CPU runs.
    pub fn supported() -> Vec<KernelPath> {
        Self::ALL.into_iter().filter(|p| p.is_supported()).collect()
    }

    /// The fastest supported path.
    pub fn detect() -> KernelPath {
        Self::supported().pop().unwrap_or(KernelPath::Scalar)
    }

    /// Parses a path name, checking that this CPU supports it.
    pub fn parse(value: &str) -> Result<KernelPath, KernelError> {
        let path = match value.trim().to_ascii_lowercase().as_str() {
            "scalar" => KernelPath::Scalar,
            "avx2" => KernelPath::Avx2,
            "avx512" => KernelPath::Avx512,
            _ => {
                return Err(KernelError::BadOverride {
                    value: value.to_string(),
                });
            }
        };
        path.require()
    }

    /// `GAUNTLET_KERNEL` when set (so every path can be tested on one machine), else
    /// the fastest supported path.
    pub fn from_env() -> Result<KernelPath, KernelError> {
        match std::env::var("GAUNTLET_KERNEL") {
            Ok(v) if !v.trim().is_empty() => Self::parse(&v),
            _ => Ok(Self::detect()),
        }
    }

    /// This path, or an error naming what the CPU lacks.
    pub fn require(self) -> Result<KernelPath, KernelError> {
        if self.is_supported() {
            return Ok(self);
        }
        let missing = match self {
            KernelPath::Scalar => "",
            KernelPath::Avx2 => "avx2, f16c",
            KernelPath::Avx512 => "avx512f, avx512bw, avx512vl, avx512vnni, avx2, f16c",
        };
        let available = Self::supported()
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ");
        Err(KernelError::Unsupported {
            path: self.name(),
            missing,
            available,
        })
    }
}

impl fmt::Display for KernelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
