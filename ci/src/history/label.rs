//! The environment kind label (local, github-actions, wsl2, gpu-runner, …), named
//! after the `[environments]` keys of `gauntlet.toml` so history and budgets agree.

use gauntlet_harness::env::{Ci, Environment, Wsl};

/// Names the kind of environment this process runs in. `GAUNTLET_ENV_LABEL`
/// overrides it, so a report job can record shards under the label of the machine
/// that ran them.
pub fn detect() -> String {
    if let Ok(label) = std::env::var("GAUNTLET_ENV_LABEL")
        && !label.trim().is_empty()
    {
        return label.trim().to_owned();
    }
    of(Environment::detect()).to_owned()
}

/// The label of a detected environment; the GPU wins over the CI system because a
/// GPU runner's timings are what distinguish it.
pub fn of(env: &Environment) -> &'static str {
    if env.gpu.is_some() {
        return "gpu-runner";
    }
    match (&env.wsl, &env.ci) {
        (Some(Wsl::V2), _) => "wsl2",
        (Some(Wsl::V1), _) => "wsl1",
        (None, Some(Ci::GithubActions { self_hosted: false })) => "github-actions",
        (None, Some(Ci::GithubActions { self_hosted: true })) => "github-actions-self-hosted",
        (None, Some(Ci::Generic)) => "ci",
        (None, None) => "local",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case::plain_machine_is_local(None, None, false, "local")]
    #[case::hosted_actions(None, Some(Ci::GithubActions { self_hosted: false }), false, "github-actions")]
    #[case::wsl2_inside_actions_is_wsl2(Some(Wsl::V2), Some(Ci::GithubActions { self_hosted: false }), false, "wsl2")]
    #[case::gpu_wins(None, Some(Ci::GithubActions { self_hosted: true }), true, "gpu-runner")]
    fn label(
        #[case] wsl: Option<Wsl>,
        #[case] ci: Option<Ci>,
        #[case] gpu: bool,
        #[case] want: &str,
    ) {
        let env = Environment {
            wsl,
            ci,
            gpu: gpu.then(|| "/dev/nvidia0".to_owned()),
            ..Environment::default()
        };
        assert_eq!(of(&env), want);
    }
}
