//! The environment kind label (local, github-actions, wsl2, gpu-runner).

/// Names the kind of environment this process runs in. `GAUNTLET_ENV_LABEL`
/// overrides it, so a report job can record shards under the label of the machine
/// that ran them.
pub fn detect() -> String {
    if let Ok(label) = std::env::var("GAUNTLET_ENV_LABEL")
        && !label.trim().is_empty()
    {
        return label.trim().to_owned();
    }
    "local".to_owned()
}
