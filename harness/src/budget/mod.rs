//! Time budgets: a base per class from `gauntlet.toml`, times a factor per detected
//! environment, times `GAUNTLET_TEST_TIMEOUT_MULTIPLIER`, each step kept so the result can
//! explain itself.

mod class;
mod config;
mod error;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use class::{Class, UnknownClass, format_duration, format_factor};
pub use config::{CONFIG_FILE, CONFIG_VAR, ENVIRONMENTS, Policy};
pub use error::{ConfigError, Origin};

use crate::env::{Ci, Environment, Probe, Wsl};

/// The variable that multiplies every budget (for a slow laptop or a debugging session).
pub const MULTIPLIER_VAR: &str = "GAUNTLET_TEST_TIMEOUT_MULTIPLIER";

/// Where a budget's base value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// A class's value in `[timeouts]`.
    Class(Class),
    /// A literal duration (`#[timeout("45s")]`).
    Literal(Duration),
}

/// What a budget is for: its base, and optionally the file it reads and the model's size
/// (which can make the environment slower: a Windows drive, a memory limit too small to
/// cache the model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Class or literal base.
    pub base: Base,
    /// The file the work reads, checked for a drvfs/9p mount.
    pub path: Option<PathBuf>,
    /// The model size in bytes, compared with the cgroup memory limit.
    pub model_size: Option<u64>,
}

impl Request {
    /// A request for a class's budget.
    pub fn class(class: Class) -> Self {
        Self {
            base: Base::Class(class),
            path: None,
            model_size: None,
        }
    }

    /// A request with a literal base.
    pub fn literal(base: Duration) -> Self {
        Self {
            base: Base::Literal(base),
            path: None,
            model_size: None,
        }
    }

    /// Adds the file the work reads.
    #[must_use]
    pub fn on_path(mut self, path: impl AsRef<Path>) -> Self {
        self.path = Some(path.as_ref().to_path_buf());
        self
    }

    /// Adds the model size.
    #[must_use]
    pub fn model_size(mut self, bytes: u64) -> Self {
        self.model_size = Some(bytes);
        self
    }
}

/// One multiplication step of a budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    /// The environment (a key of `[environments]`) or the variable name.
    pub name: String,
    /// Why it applies (`hosted`, `1 usable core`); may be empty.
    pub detail: String,
    /// The multiplier.
    pub value: f64,
}

/// A time budget with its derivation.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// The base before any factor.
    pub base: Duration,
    /// The class, when the base came from one.
    pub class: Option<Class>,
    /// The factors applied, in order.
    pub factors: Vec<Factor>,
    /// base × every factor, rounded to the millisecond.
    pub total: Duration,
}

impl Budget {
    /// The budget for `request` in this process's environment and config.
    pub fn current(request: &Request) -> Result<Budget, ConfigError> {
        let policy = Policy::for_crate(None)?;
        Self::resolve(request, &policy, Environment::detect(), &Probe::system())
    }

    /// The budget for `request` under `policy` in `env`; `probe` supplies the multiplier
    /// variable and the mount table.
    pub fn resolve(
        request: &Request,
        policy: &Policy,
        env: &Environment,
        probe: &Probe,
    ) -> Result<Budget, ConfigError> {
        let (base, class) = match request.base {
            Base::Class(c) => (policy.base(c), Some(c)),
            Base::Literal(d) => (d, None),
        };
        let mut factors = environment_factors(policy, env, probe, request);
        if factors.is_empty() {
            factors.push(Factor {
                name: "local".into(),
                detail: String::new(),
                value: policy.factor("local"),
            });
        }
        if let Some(text) = probe.var(MULTIPLIER_VAR) {
            let value = config::parse_factor(&text, Origin::Var(MULTIPLIER_VAR), MULTIPLIER_VAR)?;
            factors.push(Factor {
                name: MULTIPLIER_VAR.into(),
                detail: String::new(),
                value,
            });
        }
        let product: f64 = factors.iter().map(|f| f.value).product();
        let millis = (base.as_secs_f64() * product * 1000.0).round().max(1.0);
        // Saturate instead of overflowing: a huge multiplier means "effectively forever".
        let total = Duration::try_from_secs_f64(millis / 1000.0).unwrap_or(Duration::MAX);
        Ok(Budget {
            base,
            class,
            factors,
            total,
        })
    }

    /// The product of all factors.
    pub fn product(&self) -> f64 {
        self.factors.iter().map(|f| f.value).product()
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", format_duration(self.base))?;
        for factor in &self.factors {
            write!(f, " × {} ({}", format_factor(factor.value), factor.name)?;
            if !factor.detail.is_empty() {
                write!(f, ", {}", factor.detail)?;
            }
            f.write_str(")")?;
        }
        write!(f, " = {}", format_duration(self.total))
    }
}

/// The factors the environment calls for, per DESIGN.md's table.
pub fn environment_factors(
    policy: &Policy,
    env: &Environment,
    probe: &Probe,
    request: &Request,
) -> Vec<Factor> {
    let mut out = Vec::new();
    let mut push = |name: &str, detail: String, value: f64| {
        out.push(Factor {
            name: name.to_owned(),
            detail,
            value,
        });
    };
    match &env.ci {
        Some(Ci::GithubActions { self_hosted: false }) => {
            push(
                "github-actions",
                "hosted".into(),
                policy.factor("github-actions"),
            );
        }
        Some(Ci::GithubActions { self_hosted: true }) => {
            let v = policy.factor("github-actions-self-hosted");
            push("github-actions", "self-hosted".into(), v);
        }
        Some(Ci::Generic) => push("ci", "CI set".into(), policy.factor("ci")),
        None => {}
    }
    match env.wsl {
        Some(Wsl::V1) => push("wsl1", String::new(), policy.factor("wsl1")),
        Some(Wsl::V2) => push("wsl2", String::new(), policy.factor("wsl2")),
        None => {}
    }
    if env.wsl.is_some()
        && let Some(path) = &request.path
        && let Some(mount) = Environment::mount_of(probe, path)
        && mount.is_windows_drive()
    {
        let detail = format!("{} on {}", mount.mount_point.display(), mount.fs_type);
        push("wsl2-drvfs", detail, policy.factor("wsl2-drvfs"));
    }
    if let Some(evidence) = &env.gpu {
        push("gpu-runner", evidence.clone(), policy.factor("gpu-runner"));
    }
    let cores = env.usable_cores();
    if cores < 2.0 {
        let value = policy.factor("constrained") * 2.0 / cores.max(0.01);
        push(
            "constrained",
            format!("{} usable cores", format_factor(cores)),
            value,
        );
    }
    if let (Some(limit), Some(size)) = (env.cgroup.memory_limit, request.model_size)
        && limit < size.saturating_mul(2)
    {
        // The page cache cannot keep the model resident, so reads go to disk again.
        let detail = format!("memory limit {} MiB < 2 × model", limit / (1024 * 1024));
        push("constrained", detail, policy.factor("constrained") * 1.5);
    }
    if !env.instrumentation.is_empty() {
        let names: Vec<String> = env.instrumentation.iter().map(|i| i.to_string()).collect();
        push(
            "instrumented",
            names.join(", "),
            policy.factor("instrumented"),
        );
    }
    out
}
