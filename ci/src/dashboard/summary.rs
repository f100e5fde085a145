//! The run summary in plain text (terminal) and Markdown (`$GITHUB_STEP_SUMMARY`).

use std::fmt::Write;

use crate::analysis::{Regression, Report};

fn pct(x: f64) -> String {
    format!("{:+.1}%", x * 100.0)
}

fn regression_line(r: &Regression) -> String {
    match r {
        Regression::Benchmark(b) => format!(
            "benchmark {}: {} (interval [{}, {}]) on {}",
            b.name,
            pct(b.change),
            pct(b.change_lower),
            pct(b.change_upper),
            b.environment
        ),
        Regression::Duration(d) => format!(
            "test {}: {} (median {:.1} -> {:.1} ms, p = {:.4}) on {}",
            d.test,
            pct(d.change),
            d.baseline_median_ms,
            d.recent_median_ms,
            d.p_value,
            d.environment
        ),
    }
}

/// The terminal summary: one line per event, aligned counts.
pub fn text(report: &Report) -> String {
    let mut s = String::new();
    let Some(l) = &report.latest else {
        return "no runs recorded\n".to_owned();
    };
    let _ = writeln!(
        s,
        "run {}{} on {}",
        l.key,
        l.commit
            .as_deref()
            .map(|c| format!(" (commit {})", &c[..c.len().min(12)]))
            .unwrap_or_default(),
        l.environment
    );
    let _ = writeln!(
        s,
        "  {} passed, {} failed, {} flaky, {} skipped; {} benchmarks",
        l.passed,
        l.failed,
        l.flaky,
        l.skipped.len(),
        l.benchmarks
    );
    for f in &report.failures {
        let _ = writeln!(
            s,
            "FAILED  {}{} ({} attempts)",
            f.test,
            if f.new { " [new]" } else { "" },
            f.attempts
        );
    }
    for f in &report.flaky {
        let _ = writeln!(
            s,
            "FLAKY   {} ({}; {} of {} runs failed, {} passed on retry)",
            f.test,
            f.reasons.join(", "),
            f.failures,
            f.runs,
            f.passed_on_retry
        );
    }
    for k in &l.skipped {
        let _ = writeln!(s, "SKIPPED {}: {}", k.test, k.reason);
    }
    for r in &report.regressions {
        let _ = writeln!(s, "SLOWER  {}", regression_line(r));
    }
    if !l.slowest.is_empty() {
        let _ = writeln!(s, "slowest:");
        for t in l.slowest.iter().take(5) {
            let _ = writeln!(s, "  {:>10.3}s  {}", t.duration_ms / 1000.0, t.test);
        }
    }
    s
}

fn md_escape(text: &str) -> String {
    text.replace('|', "\\|").replace('`', "'")
}

/// The same summary as GitHub-flavoured Markdown.
pub fn markdown(report: &Report) -> String {
    let mut s = String::from("## Gauntlet\n\n");
    let Some(l) = &report.latest else {
        s.push_str("No runs recorded.\n");
        return s;
    };
    let _ = writeln!(
        s,
        "| passed | failed | flaky | skipped | benchmarks | environment |\n|---|---|---|---|---|---|\n| {} | {} | {} | {} | {} | {} |\n",
        l.passed,
        l.failed,
        l.flaky,
        l.skipped.len(),
        l.benchmarks,
        md_escape(&l.environment)
    );
    if !report.failures.is_empty() {
        s.push_str("### Failed\n\n| test | new | attempts |\n|---|---|---|\n");
        for f in &report.failures {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} |",
                md_escape(&f.test),
                if f.new { "yes" } else { "" },
                f.attempts
            );
        }
        s.push('\n');
    }
    if !report.flaky.is_empty() {
        s.push_str(
            "### Flaky\n\n| test | why | failed / runs | passed on retry |\n|---|---|---|---|\n",
        );
        for f in &report.flaky {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} / {} | {} |",
                md_escape(&f.test),
                f.reasons.join(", "),
                f.failures,
                f.runs,
                f.passed_on_retry
            );
        }
        s.push('\n');
    }
    if !l.skipped.is_empty() {
        s.push_str("### Skipped\n\n| test | reason |\n|---|---|\n");
        for k in &l.skipped {
            let _ = writeln!(s, "| `{}` | {} |", md_escape(&k.test), md_escape(&k.reason));
        }
        s.push('\n');
    }
    if !report.regressions.is_empty() {
        s.push_str("### Regressions\n\n");
        for r in &report.regressions {
            let _ = writeln!(s, "- {}", md_escape(&regression_line(r)));
        }
        s.push('\n');
    }
    if !l.slowest.is_empty() {
        s.push_str("### Slowest tests\n\n| seconds | test |\n|---|---|\n");
        for t in l.slowest.iter().take(5) {
            let _ = writeln!(
                s,
                "| {:.3} | `{}` |",
                t.duration_ms / 1000.0,
                md_escape(&t.test)
            );
        }
    }
    s
}
