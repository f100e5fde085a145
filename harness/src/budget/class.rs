//! The budget classes and how budgets are printed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A kind of work with its own base budget in `[timeouts]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Any test without a more specific class (`test_default`, 30 s unless configured).
    TestDefault,
    /// Loading a model file (`model_loading`, 60 s).
    ModelLoading,
    /// Creating a GPU context and loading kernels (`gpu_initialization`, 10 s).
    GpuInitialization,
}

impl Class {
    /// Every class, in the order of `[timeouts]`.
    pub const ALL: [Class; 3] = [
        Class::TestDefault,
        Class::ModelLoading,
        Class::GpuInitialization,
    ];

    /// The key in `[timeouts]`.
    pub fn key(self) -> &'static str {
        match self {
            Self::TestDefault => "test_default",
            Self::ModelLoading => "model_loading",
            Self::GpuInitialization => "gpu_initialization",
        }
    }

    /// The budget used when `gauntlet.toml` does not set one.
    pub fn default_base(self) -> Duration {
        match self {
            Self::TestDefault => Duration::from_secs(30),
            Self::ModelLoading => Duration::from_secs(60),
            Self::GpuInitialization => Duration::from_secs(10),
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A class name that is not one of [`Class::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timeout class `{0}`; expected test_default, model_loading or gpu_initialization")]
pub struct UnknownClass(pub String);

impl FromStr for Class {
    type Err = UnknownClass;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Class::ALL
            .into_iter()
            .find(|c| c.key() == s)
            .ok_or_else(|| UnknownClass(s.to_owned()))
    }
}

/// Prints a duration the way people write budgets: `180s`, `200ms`, `1.5s`.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        return format!("{}s", d.as_secs());
    }
    if d < Duration::from_millis(1) {
        return format!("{}µs", d.as_micros());
    }
    if d < Duration::from_secs(1) && d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{}ms", d.as_millis());
    }
    let text = format!("{:.3}", d.as_secs_f64());
    format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
}

/// Prints a factor with at least one decimal (`2.0`, `1.5`) and at most two (`1.33`).
pub fn format_factor(v: f64) -> String {
    let hundredths = v * 100.0;
    if (hundredths - hundredths.round()).abs() < 1e-9 {
        let text = format!("{v}");
        if text.contains('.') {
            text
        } else {
            format!("{v:.1}")
        }
    } else {
        format!("{v:.2}")
    }
}
