//! The HTML page around the charts.

use std::fmt::Write;

use super::charts::{Chart, EnvironmentRows};
use crate::analysis::{Regression, Report};
use crate::history::StoredRun;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:960px;color:#1f2328}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left}
th{background:#f6f8fa}.bad{color:#cf222e}.warn{color:#9a6700}.good{color:#1a7f37}
figure{margin:1rem 0}figure svg{max-width:100%;height:auto}.muted{color:#656d76}";

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn figure(html: &mut String, chart: &Chart) {
    // The SVG is inlined so the page is one self-contained file; plotters' output
    // starts with an XML-free <svg> element, which HTML accepts as is.
    let _ = writeln!(
        html,
        "<figure id=\"{id}\" class=\"chart\"><figcaption>{title}</figcaption>{svg}</figure>",
        id = escape(&chart.id),
        title = escape(&chart.title),
        svg = chart.svg
    );
}

fn pct(x: f64) -> String {
    format!("{:+.1}%", x * 100.0)
}

/// Builds `index.html`.
pub fn index(
    runs: &[StoredRun],
    report: &Report,
    main_charts: &[Chart],
    bench_charts: &[Chart],
    env_rows: &EnvironmentRows,
) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.push_str("<link rel=\"icon\" href=\"data:,\"><title>Gauntlet dashboard</title><style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body>\n<h1>Gauntlet dashboard</h1>\n");

    match &report.latest {
        Some(l) => {
            let _ = writeln!(
                h,
                "<p>{} runs recorded. Latest run <code>{}</code>{} on {}: \
                 <span class=\"good\">{} passed</span>, <span class=\"bad\">{} failed</span>, \
                 <span class=\"warn\">{} flaky</span>, {} skipped, {} benchmarks.</p>",
                report.runs,
                escape(&l.key),
                l.commit
                    .as_deref()
                    .map(|c| format!(" (commit <code>{}</code>)", escape(&c[..c.len().min(12)])))
                    .unwrap_or_default(),
                escape(&l.environment),
                l.passed,
                l.failed,
                l.flaky,
                l.skipped.len(),
                l.benchmarks
            );
        }
        None => h.push_str("<p>No runs recorded yet.</p>\n"),
    }

    h.push_str("<h2>Regressions</h2>\n");
    if report.regressions.is_empty() {
        h.push_str("<p class=\"good\" id=\"no-regressions\">None.</p>\n");
    } else {
        h.push_str("<table id=\"regressions\"><tr><th>kind</th><th>name</th><th>environment</th><th>change</th><th>evidence</th></tr>\n");
        for r in &report.regressions {
            let (kind, env, change, evidence) = match r {
                Regression::Benchmark(b) => (
                    "benchmark",
                    &b.environment,
                    b.change,
                    format!(
                        "interval of the change [{}, {}]",
                        pct(b.change_lower),
                        pct(b.change_upper)
                    ),
                ),
                Regression::Duration(d) => (
                    "test duration",
                    &d.environment,
                    d.change,
                    format!(
                        "median {:.1} → {:.1} ms, p = {:.4} ({} vs {} runs)",
                        d.baseline_median_ms,
                        d.recent_median_ms,
                        d.p_value,
                        d.samples[0],
                        d.samples[1]
                    ),
                ),
            };
            let _ = writeln!(
                h,
                "<tr><td>{kind}</td><td><code>{}</code></td><td>{}</td><td class=\"bad\">{}</td><td>{}</td></tr>",
                escape(r.name()),
                escape(env),
                pct(change),
                escape(&evidence)
            );
        }
        h.push_str("</table>\n");
    }

    h.push_str("<h2>Failures in the latest run</h2>\n");
    if report.failures.is_empty() {
        h.push_str("<p class=\"good\">None.</p>\n");
    } else {
        h.push_str("<table id=\"failures\"><tr><th>test</th><th>new?</th><th>failing runs in a row</th><th>message</th></tr>\n");
        for f in &report.failures {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&f.test),
                if f.new { "new" } else { "" },
                f.consecutive,
                escape(f.message.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table>\n");
    }

    h.push_str("<h2>Flaky leaderboard</h2>\n");
    if report.flaky.is_empty() {
        h.push_str("<p class=\"good\">No flaky tests in the window.</p>\n");
    } else {
        h.push_str("<table id=\"flaky\"><tr><th>#</th><th>test</th><th>why</th><th>runs</th><th>failed</th><th>passed on retry</th><th>transition score</th></tr>\n");
        for (i, f) in report.flaky.iter().enumerate() {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
                i + 1,
                escape(&f.test),
                f.reasons.join(", "),
                f.runs,
                f.failures,
                f.passed_on_retry,
                f.transition_score
            );
        }
        h.push_str("</table>\n");
    }

    h.push_str("<h2>Runs</h2>\n");
    for chart in main_charts {
        figure(&mut h, chart);
        if chart.id == "duration-by-environment" && !env_rows.is_empty() {
            h.push_str("<table id=\"environments\"><tr><th>#</th><th>test</th><th>median ms per environment</th></tr>\n");
            for (i, (test, envs)) in env_rows.iter().enumerate() {
                let cells: Vec<String> = envs
                    .iter()
                    .map(|(e, v)| format!("{}: {v:.1}", escape(e)))
                    .collect();
                let _ = writeln!(
                    h,
                    "<tr><td>#{}</td><td><code>{}</code></td><td>{}</td></tr>",
                    i + 1,
                    escape(test),
                    cells.join(", ")
                );
            }
            h.push_str("</table>\n");
        }
    }

    h.push_str("<h2>Benchmarks</h2>\n");
    if bench_charts.is_empty() {
        h.push_str("<p class=\"muted\">No benchmarks recorded.</p>\n");
    } else {
        h.push_str("<p class=\"muted\">Line: estimate; band: confidence interval; red ring: regression against the previous run in the same environment.</p>\n");
    }
    for chart in bench_charts {
        figure(&mut h, chart);
    }
    if let Some(l) = &report.latest
        && !l.skipped.is_empty()
    {
        h.push_str("<h2>Skipped in the latest run</h2>\n<table id=\"skipped\"><tr><th>test</th><th>reason</th></tr>\n");
        for s in &l.skipped {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                escape(&s.test),
                escape(&s.reason)
            );
        }
        h.push_str("</table>\n");
    }
    let _ = write!(
        h,
        "<p class=\"muted\">Generated by gauntlet {} from {} runs.</p>\n</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        runs.len()
    );
    h
}
