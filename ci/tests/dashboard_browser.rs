//! The dashboard renders in headless Chromium with its charts and no console errors.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it). Without it the test prints
//! `SKIP …` and passes, unless `GAUNTLET_REQUIRE_BROWSER=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Upper bound on one headless Chromium run, enforced by coreutils' `timeout`.
const BROWSER_DEADLINE_SECS: &str = "90";

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|p| p.is_file())
}

fn gauntlet(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .env("GAUNTLET_ENV_LABEL", "browser-test")
        .output()
        .expect("run gauntlet");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Loads `page` headless and returns (DOM, console lines from the log).
fn load(chromium: &Path, page: &Path, profile: &Path) -> (String, Vec<String>) {
    let url = format!("file://{}", page.display());
    let out: Output = Command::new("timeout")
        .args(["-k", "5", BROWSER_DEADLINE_SECS])
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("spawn timeout/chromium");
    assert_ne!(
        out.status.code(),
        Some(124),
        "chromium did not finish within {BROWSER_DEADLINE_SECS}s"
    );
    let log = String::from_utf8_lossy(&out.stderr);
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_owned)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

#[test]
fn dashboard_renders_in_headless_chromium_with_charts_and_no_console_errors() {
    let Some(chromium) = find_chromium() else {
        if std::env::var("GAUNTLET_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!(
                "GAUNTLET_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install -y chromium)"
            );
        }
        println!("SKIP chromium is not installed (apt-get install -y chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.sqlite");
    let db_arg = db.to_str().unwrap();
    let before = data("criterion/before");
    let after = data("criterion/after");
    let junit = data("nextest/flaky-and-failing.xml");
    gauntlet(&[
        "record",
        "--db",
        db_arg,
        "--criterion",
        before.to_str().unwrap(),
        "--run-id",
        "a",
    ]);
    gauntlet(&[
        "record",
        "--db",
        db_arg,
        "--junit",
        junit.to_str().unwrap(),
        "--criterion",
        after.to_str().unwrap(),
        "--run-id",
        "b",
    ]);
    let site = dir.path().join("site");
    gauntlet(&[
        "dashboard",
        "--db",
        db_arg,
        "--out",
        site.to_str().unwrap(),
        "--config",
        "/nonexistent/gauntlet.toml",
    ]);

    // Control: the console capture must see an error when a page has one, or the
    // real check below could never fail.
    let control = dir.path().join("control.html");
    std::fs::write(&control, "<!DOCTYPE html><html><body><script>console.error('gauntlet-control-error')</script></body></html>").unwrap();
    let (_, control_console) = load(&chromium, &control, &dir.path().join("profile-control"));
    assert!(
        control_console
            .iter()
            .any(|l| l.contains("gauntlet-control-error")),
        "console capture does not work with this chromium: {control_console:?}"
    );

    let (dom, console) = load(
        &chromium,
        &site.join("index.html"),
        &dir.path().join("profile"),
    );
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(
        dom.contains("<h1>Gauntlet dashboard</h1>"),
        "page did not render:\n{dom}"
    );
    for id in [
        "run-history",
        "slowest-tests",
        "duration-by-environment",
        "bench-0",
        "bench-1",
    ] {
        let at = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("chart {id} missing from the rendered page"));
        let rest = &dom[at..];
        let figure_end = rest.find("</figure>").expect("figure closes");
        assert!(
            rest[..figure_end].contains("<svg"),
            "chart {id} has no <svg>"
        );
        assert!(
            rest[..figure_end].contains("<text"),
            "chart {id} has no labels"
        );
    }
    assert!(dom.contains("sums/sum_slowing"), "regression table missing");
}
