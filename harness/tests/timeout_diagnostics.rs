//! Snapshots of the timeout diagnostic in fixed environments, so its wording and layout
//! change only on purpose.

use std::time::Duration;

use gauntlet_harness::budget::{Budget, Class, Policy, Request};
use gauntlet_harness::env::{CgroupLimits, Ci, Environment, NextestFacts, Probe, Wsl};
use gauntlet_harness::{BodyThread, Diagnostic};

fn budget(env: &Environment, vars: &[(&str, &str)], request: Request) -> Budget {
    let root = tempfile::tempdir().expect("tempdir");
    let probe = vars
        .iter()
        .fold(Probe::fake(root.path()), |p, (k, v)| p.var_set(k, v));
    Budget::resolve(&request, &Policy::default(), env, &probe).expect("budget")
}

fn github_hosted_under_nextest() -> Environment {
    Environment {
        ci: Some(Ci::GithubActions { self_hosted: false }),
        kernel_release: Some("6.8.0-1017-azure".into()),
        host_cpus: 2,
        cgroup: CgroupLimits {
            memory_limit: Some(7 * 1024 * 1024 * 1024),
            ..CgroupLimits::default()
        },
        nextest: Some(NextestFacts {
            profile: Some("ci".into()),
            execution_mode: Some("process-per-test".into()),
            attempt: Some(1),
            total_attempts: Some(3),
        }),
        ..Environment::default()
    }
}

#[test]
fn github_actions_with_multiplier_and_stages() {
    let env = github_hosted_under_nextest();
    let budget = budget(
        &env,
        &[("GAUNTLET_TEST_TIMEOUT_MULTIPLIER", "3")],
        Request::class(Class::ModelLoading),
    );
    let diagnostic = Diagnostic {
        test: "suites::loading::model_loading_large_gguf_file".into(),
        elapsed: budget.total + Duration::from_millis(4),
        budget,
        stages: vec![
            (Duration::from_millis(2), "open fixture".into()),
            (Duration::from_millis(130), "parse header".into()),
            (Duration::from_millis(410), "prefault tensors".into()),
        ],
        progress: Some((Duration::from_secs(301), "412 MiB of 1.1 GiB".into())),
        facts: env.facts(),
        body_thread: BodyThread::EndsWithProcess,
    };
    insta::assert_snapshot!(diagnostic.to_string());
}

#[test]
fn wsl2_under_cargo_test_without_stages() {
    let env = Environment {
        wsl: Some(Wsl::V2),
        kernel_release: Some("5.15.153.1-microsoft-standard-WSL2".into()),
        host_cpus: 8,
        ..Environment::default()
    };
    let budget = budget(&env, &[], Request::literal(Duration::from_millis(200)));
    let diagnostic = Diagnostic {
        test: "outside::spins_forever".into(),
        elapsed: Duration::from_millis(301),
        budget,
        stages: Vec::new(),
        progress: None,
        facts: env.facts(),
        body_thread: BodyThread::Abandoned,
    };
    insta::assert_snapshot!(diagnostic.to_string());
}
