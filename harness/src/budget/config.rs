//! `gauntlet.toml`: base budgets per class, factors per environment, and which environments
//! each nextest profile runs in. Unknown top-level tables belong to other tools and are
//! ignored; unknown keys inside the tables read here are errors, so a typo cannot silently
//! fall back to a default.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::class::Class;
use super::error::{ConfigError, DURATION_FORM, FACTOR_FORM, Origin};
use crate::env::Probe;

/// The file name searched for, walking up from the crate and the working directory.
pub const CONFIG_FILE: &str = "gauntlet.toml";
/// Variable naming the config file explicitly (overrides the search).
pub const CONFIG_VAR: &str = "GAUNTLET_CONFIG";

/// The environments a factor can be configured for, with their default factors.
///
/// `constrained` multiplies the CPU-quota scaling (2 / usable cores) rather than replacing it;
/// `wsl2-drvfs` applies on top of `wsl2` when the path in question is on a Windows drive.
pub const ENVIRONMENTS: [(&str, f64); 10] = [
    ("local", 1.0),
    ("ci", 1.5),
    ("github-actions", 2.0),
    ("github-actions-self-hosted", 1.0),
    ("wsl1", 2.0),
    ("wsl2", 1.5),
    ("wsl2-drvfs", 2.0),
    ("gpu-runner", 1.0),
    ("constrained", 1.0),
    ("instrumented", 10.0),
];

/// Timeout policy: everything [`super::Budget`] needs besides the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The file this came from; `None` for built-in defaults.
    pub source: Option<PathBuf>,
    bases: BTreeMap<Class, Duration>,
    factors: BTreeMap<String, f64>,
    /// nextest profile name → the environments that profile runs in (`[nextest-profiles]`),
    /// used by `gauntlet check-config`.
    pub nextest_profiles: BTreeMap<String, Vec<String>>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            source: None,
            bases: Class::ALL
                .into_iter()
                .map(|c| (c, c.default_base()))
                .collect(),
            factors: ENVIRONMENTS
                .iter()
                .map(|(n, f)| ((*n).to_owned(), *f))
                .collect(),
            nextest_profiles: BTreeMap::new(),
        }
    }
}

impl Policy {
    /// The base budget of a class.
    pub fn base(&self, class: Class) -> Duration {
        self.bases
            .get(&class)
            .copied()
            .unwrap_or_else(|| class.default_base())
    }

    /// The factor of an environment from [`ENVIRONMENTS`] (1.0 for a name not listed there).
    pub fn factor(&self, environment: &str) -> f64 {
        self.factors.get(environment).copied().unwrap_or(1.0)
    }

    /// Parses a policy from TOML text; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Policy, ConfigError> {
        let origin = || Origin::File(path.to_path_buf());
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: path.to_path_buf(),
                    message: e.to_string().trim().to_owned(),
                })?;
        let mut policy = Policy {
            source: Some(path.to_path_buf()),
            ..Policy::default()
        };
        if let Some(timeouts) = table.get("timeouts") {
            let timeouts = as_table(timeouts, "timeouts", origin())?;
            for (key, value) in timeouts {
                let class: Class = key.parse().map_err(|_| ConfigError::UnknownKey {
                    origin: origin(),
                    table: "timeouts".into(),
                    key: key.clone(),
                    expected: "test_default, model_loading, gpu_initialization".into(),
                })?;
                let full = format!("timeouts.{key}");
                let text = value
                    .as_str()
                    .ok_or_else(|| bad(origin(), &full, value, DURATION_FORM))?;
                let duration = parse_duration(text, origin(), &full)?;
                policy.bases.insert(class, duration);
            }
        }
        if let Some(envs) = table.get("environments") {
            let envs = as_table(envs, "environments", origin())?;
            for (name, body) in envs {
                if !ENVIRONMENTS.iter().any(|(n, _)| n == name) {
                    return Err(ConfigError::UnknownKey {
                        origin: origin(),
                        table: "environments".into(),
                        key: name.clone(),
                        expected: environment_names(),
                    });
                }
                let table_name = format!("environments.{name}");
                for (key, value) in as_table(body, &table_name, origin())? {
                    if key != "factor" {
                        return Err(ConfigError::UnknownKey {
                            origin: origin(),
                            table: table_name.clone(),
                            key: key.clone(),
                            expected: "factor".into(),
                        });
                    }
                    let full = format!("{table_name}.factor");
                    let factor = match value {
                        toml::Value::Float(f) => *f,
                        toml::Value::Integer(i) => *i as f64,
                        other => return Err(bad(origin(), &full, other, FACTOR_FORM)),
                    };
                    if !(factor.is_finite() && factor > 0.0) {
                        return Err(bad(origin(), &full, value, FACTOR_FORM));
                    }
                    policy.factors.insert(name.clone(), factor);
                }
            }
        }
        if let Some(profiles) = table.get("nextest-profiles") {
            for (profile, value) in as_table(profiles, "nextest-profiles", origin())? {
                let full = format!("nextest-profiles.{profile}");
                const FORM: &str = "a list of environment names such as [\"github-actions\"]";
                let list = value
                    .as_array()
                    .ok_or_else(|| bad(origin(), &full, value, FORM))?;
                let mut names = Vec::new();
                for item in list {
                    let name = item
                        .as_str()
                        .ok_or_else(|| bad(origin(), &full, item, FORM))?;
                    if !ENVIRONMENTS.iter().any(|(n, _)| *n == name) {
                        return Err(ConfigError::UnknownKey {
                            origin: origin(),
                            table: full.clone(),
                            key: name.to_owned(),
                            expected: environment_names(),
                        });
                    }
                    names.push(name.to_owned());
                }
                policy.nextest_profiles.insert(profile.clone(), names);
            }
        }
        Ok(policy)
    }

    /// Reads and parses one file.
    pub fn load(path: &Path) -> Result<Policy, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Finds the config: `GAUNTLET_CONFIG` if set, else the first `gauntlet.toml` in
    /// `start_dirs` or their ancestors; `None` when there is none (defaults apply).
    pub fn find(probe: &Probe, start_dirs: &[PathBuf]) -> Option<PathBuf> {
        if let Some(path) = probe.var(CONFIG_VAR).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        start_dirs
            .iter()
            .flat_map(|d| d.ancestors())
            .map(|d| d.join(CONFIG_FILE))
            .find(|p| p.is_file())
    }

    /// The policy for a test crate: found from the crate's manifest directory (the
    /// compile-time one passed in, then the runtime `CARGO_MANIFEST_DIR`), then the working
    /// directory; parsed once per file and cached.
    pub fn for_crate(compile_time_manifest_dir: Option<&str>) -> Result<Arc<Policy>, ConfigError> {
        // Keyed by everything the search depends on except the file system, so the common
        // case (every test of a binary asking) is two variable reads and a map lookup.
        type Key = (Option<String>, Option<String>, Option<String>);
        static CACHE: Mutex<Option<HashMap<Key, Arc<Policy>>>> = Mutex::new(None);
        let probe = Probe::system();
        let runtime_dir = probe.var("CARGO_MANIFEST_DIR");
        let key: Key = (
            compile_time_manifest_dir.map(str::to_owned),
            runtime_dir.clone(),
            probe.var(CONFIG_VAR),
        );
        if let Some(hit) = CACHE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|c| c.get(&key))
        {
            return Ok(Arc::clone(hit));
        }
        let mut dirs = Vec::new();
        // Compile-time first: a runtime CARGO_MANIFEST_DIR may be inherited from whatever
        // started this binary (another crate's test), while the compile-time one is ours.
        dirs.extend(compile_time_manifest_dir.map(PathBuf::from));
        dirs.extend(runtime_dir.map(PathBuf::from));
        dirs.extend(std::env::current_dir().ok());
        let policy = Arc::new(match Self::find(&probe, &dirs) {
            Some(path) => Self::load(&path)?,
            None => Policy::default(),
        });
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get_or_insert_with(HashMap::new)
            .insert(key, Arc::clone(&policy));
        Ok(policy)
    }
}

/// Parses a humantime duration, rejecting zero and bare numbers of unclear unit.
pub(crate) fn parse_duration(
    text: &str,
    origin: Origin,
    key: &str,
) -> Result<Duration, ConfigError> {
    let error = || ConfigError::BadValue {
        origin: origin.clone(),
        key: key.to_owned(),
        value: format!("{text:?}"),
        expected: DURATION_FORM,
    };
    let d = humantime::parse_duration(text.trim()).map_err(|_| error())?;
    if d.is_zero() { Err(error()) } else { Ok(d) }
}

/// Parses a positive finite multiplier.
pub(crate) fn parse_factor(text: &str, origin: Origin, key: &str) -> Result<f64, ConfigError> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(ConfigError::BadValue {
            origin,
            key: key.to_owned(),
            value: format!("{text:?}"),
            expected: FACTOR_FORM,
        }),
    }
}

fn as_table<'a>(
    value: &'a toml::Value,
    name: &str,
    origin: Origin,
) -> Result<&'a toml::Table, ConfigError> {
    value.as_table().ok_or_else(|| ConfigError::BadValue {
        origin,
        key: name.to_owned(),
        value: value.to_string(),
        expected: "a table",
    })
}

fn bad(origin: Origin, key: &str, value: &toml::Value, expected: &'static str) -> ConfigError {
    ConfigError::BadValue {
        origin,
        key: key.to_owned(),
        value: value.to_string(),
        expected,
    }
}

fn environment_names() -> String {
    ENVIRONMENTS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}
