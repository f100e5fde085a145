//! The dashboard's SVG charts, drawn with plotters' SVG backend (no fonts or
//! network needed: text becomes SVG `<text>` for the browser to lay out).

use std::collections::BTreeMap;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::analysis::compare_bench;
use crate::history::{StoredRun, TestStatus, test_id};

const WIDTH: u32 = 880;
const HEIGHT: u32 = 320;
const PASS: RGBColor = RGBColor(46, 160, 67);
const FAIL: RGBColor = RGBColor(207, 34, 46);
const FLAKY: RGBColor = RGBColor(219, 138, 0);
const SKIP: RGBColor = RGBColor(140, 149, 159);
const PALETTE: [RGBColor; 6] = [
    RGBColor(9, 105, 218),
    RGBColor(130, 80, 223),
    RGBColor(219, 138, 0),
    RGBColor(46, 160, 67),
    RGBColor(207, 34, 46),
    RGBColor(27, 124, 131),
];

/// A chart that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the {chart} chart: {message}")]
pub struct ChartError {
    chart: String,
    message: String,
}

/// A drawn chart: file stem, title and SVG text.
pub struct Chart {
    /// File name without extension, also the HTML id.
    pub id: String,
    /// Heading shown above it.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// The plotting surface every chart draws its series on: f64 item positions against
/// f64 values.
type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// What the charts share around their series: items along x (runs or tests) at
/// 0..items, values from zero up along y, one mesh and one legend style. The charts
/// differ only in these fields.
struct Frame<'a> {
    /// How many items lie along x.
    items: usize,
    /// Top of the y axis (headroom above the largest value included).
    y_top: f64,
    /// Room for the y labels in pixels: wider for longer numbers.
    y_label_width: u32,
    /// Vertical grid lines; bar charts leave them out.
    x_mesh: bool,
    x_desc: &'a str,
    y_desc: &'a str,
    /// Label for the item at x (empty between items).
    x_label: fn(f64) -> String,
    /// Where the legend sits, clear of where this chart's data tends to be.
    legend: SeriesLabelPosition,
}

impl Frame<'_> {
    /// Axes and mesh, then `series`, then the legend of what `series` labelled.
    fn draw(
        &self,
        root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
        series: impl FnOnce(&mut Plot<'_, '_>) -> Result<(), Box<dyn std::error::Error>>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(self.y_label_width)
            .build_cartesian_2d(index_range(self.items), 0f64..self.y_top)?;
        let x_label = |x: &f64| (self.x_label)(*x);
        let mut mesh = chart.configure_mesh();
        if !self.x_mesh {
            mesh.disable_x_mesh();
        }
        mesh.x_labels(label_count(self.items))
            .x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .x_label_formatter(&x_label)
            .draw()?;
        series(&mut chart)?;
        chart
            .configure_series_labels()
            .position(self.legend.clone())
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }
}

/// Draws one chart into an SVG document: `frame` around what `series` draws.
fn draw(
    id: &str,
    title: &str,
    frame: Frame<'_>,
    series: impl FnOnce(&mut Plot<'_, '_>) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<Chart, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|()| frame.draw(&root, series).map_err(|e| e.to_string()))
            .and_then(|()| root.present().map_err(|e| e.to_string()));
        drawn.map_err(|message| ChartError {
            chart: title.to_owned(),
            message,
        })?;
    }
    Ok(Chart {
        id: id.to_owned(),
        title: title.to_owned(),
        svg,
    })
}

/// Top of the y axis for `values`: 15 % above the largest, and above `floor` where
/// there are none, so the axis never collapses to nothing.
fn headroom(values: impl Iterator<Item = f64>, floor: f64) -> f64 {
    values.fold(0.0f64, f64::max).max(floor) * 1.15
}

/// The x range for `n` items drawn at 0..n, with half a slot of margin each side.
fn index_range(n: usize) -> std::ops::Range<f64> {
    -0.5..n.max(1) as f64 - 0.5
}

/// One tick per item up to 20, so labels land on items rather than between them.
fn label_count(n: usize) -> usize {
    n.clamp(1, 20)
}

/// 1-based label for the item at `x`, or nothing between items.
fn ordinal(x: f64) -> String {
    if (x - x.round()).abs() < 0.05 && x >= -0.05 {
        format!("{}", x.round() as i64 + 1)
    } else {
        String::new()
    }
}

/// Stacked bars of passed / flaky / failed / skipped per run.
pub fn run_history(runs: &[StoredRun]) -> Result<Chart, ChartError> {
    let counts: Vec<[usize; 4]> = runs
        .iter()
        .map(|r| {
            let c = |s| r.tests.iter().filter(|t| t.status == s).count();
            [
                c(TestStatus::Passed),
                c(TestStatus::Flaky),
                c(TestStatus::Failed),
                c(TestStatus::Skipped),
            ]
        })
        .collect();
    let max = counts
        .iter()
        .map(|c| c.iter().sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1);
    let frame = Frame {
        items: runs.len(),
        y_top: max as f64 * 1.1,
        y_label_width: 48,
        x_mesh: false,
        x_desc: "run",
        y_desc: "tests",
        x_label: ordinal,
        legend: SeriesLabelPosition::MiddleRight,
    };
    draw("run-history", "Run history", frame, |chart| {
        let series = [
            ("passed", PASS),
            ("flaky", FLAKY),
            ("failed", FAIL),
            ("skipped", SKIP),
        ];
        for (k, (label, color)) in series.into_iter().enumerate() {
            let bars = counts.iter().enumerate().map(move |(i, c)| {
                let below: usize = c[..k].iter().sum();
                let x = i as f64;
                Rectangle::new(
                    [(x - 0.4, below as f64), (x + 0.4, (below + c[k]) as f64)],
                    color.filled(),
                )
            });
            chart.draw_series(bars)?.label(label).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
            });
        }
        Ok(())
    })
}

/// Durations over time of the tests slowest in the latest run.
pub fn slowest_over_time(runs: &[StoredRun], top: usize) -> Result<Chart, ChartError> {
    let mut latest: Vec<_> = crate::analysis::latest_with_tests(runs)
        .map(|r| {
            r.tests
                .iter()
                .filter(|t| t.status != TestStatus::Skipped)
                .collect()
        })
        .unwrap_or_default();
    latest.sort_by(|a, b| b.duration_ms.total_cmp(&a.duration_ms));
    latest.truncate(top);
    let lines: Vec<(String, Vec<(f64, f64)>)> = latest
        .iter()
        .map(|t| {
            let points = runs
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    r.tests
                        .iter()
                        .find(|x| {
                            x.suite == t.suite
                                && x.name == t.name
                                && x.status != TestStatus::Skipped
                        })
                        .map(|x| (i as f64, x.duration_ms))
                })
                .collect();
            (t.id(), points)
        })
        .collect();
    let y_top = headroom(lines.iter().flat_map(|(_, p)| p.iter().map(|p| p.1)), 1.0);
    let frame = Frame {
        items: runs.len(),
        y_top,
        y_label_width: 56,
        x_mesh: true,
        x_desc: "run",
        y_desc: "ms",
        x_label: ordinal,
        legend: SeriesLabelPosition::UpperLeft,
    };
    draw("slowest-tests", "Slowest tests over time", frame, |chart| {
        for (k, (name, points)) in lines.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        Ok(())
    })
}

/// One benchmark's estimate per run with its confidence band; red points are
/// measurements that regressed against the previous one in the same environment.
pub fn bench_trend(
    runs: &[StoredRun],
    name: &str,
    noise: f64,
    index: usize,
) -> Result<Chart, ChartError> {
    // environment label -> (run index, record)
    let mut by_env: BTreeMap<String, Vec<(f64, &crate::history::BenchRecord)>> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        if let Some(b) = run.benches.iter().find(|b| b.name == name) {
            by_env
                .entry(run.meta.environment.short())
                .or_default()
                .push((i as f64, b));
        }
    }
    let y_top = headroom(
        by_env.values().flat_map(|v| v.iter().map(|(_, b)| b.upper)),
        f64::MIN_POSITIVE,
    );
    let unit = by_env
        .values()
        .flat_map(|v| v.iter().map(|(_, b)| b.unit.clone()))
        .next()
        .unwrap_or_default();
    let frame = Frame {
        items: runs.len(),
        y_top,
        y_label_width: 64,
        x_mesh: true,
        x_desc: "run",
        y_desc: unit.as_str(),
        x_label: ordinal,
        legend: SeriesLabelPosition::LowerRight,
    };
    draw(&format!("bench-{index}"), name, frame, |chart| {
        for (k, (env, points)) in by_env.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let band: Vec<(f64, f64)> = points
                .iter()
                .map(|(x, b)| (*x, b.upper))
                .chain(points.iter().rev().map(|(x, b)| (*x, b.lower)))
                .collect();
            chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.2).filled())))?;
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|(x, b)| (*x, b.estimate)),
                    color.stroke_width(2),
                ))?
                .label(env.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2))
                });
            let regressed: Vec<(f64, f64)> = points
                .windows(2)
                .filter(|w| compare_bench(w[0].1, w[1].1).is_some_and(|c| c.change_lower > noise))
                .map(|w| (w[1].0, w[1].1.estimate))
                .collect();
            chart.draw_series(
                points
                    .iter()
                    .map(|(x, b)| Circle::new((*x, b.estimate), 3, color.filled())),
            )?;
            chart.draw_series(
                regressed
                    .iter()
                    .map(|&p| Circle::new(p, 7, FAIL.stroke_width(3))),
            )?;
        }
        Ok(())
    })
}

/// Median durations of the `top` slowest tests per environment label, slowest first.
pub type EnvironmentRows = Vec<(String, BTreeMap<String, f64>)>;

/// Computes the rows that `duration_by_environment` draws and the page tabulates.
pub fn environment_rows(runs: &[StoredRun], top: usize) -> EnvironmentRows {
    // test -> environment -> durations
    let mut table: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for run in runs {
        for t in run.tests.iter().filter(|t| t.status == TestStatus::Passed) {
            table
                .entry(test_id(&t.suite, &t.name))
                .or_default()
                .entry(run.meta.environment.label.clone())
                .or_default()
                .push(t.duration_ms);
        }
    }
    let median = |v: &Vec<f64>| {
        let mut s = v.clone();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    let mut rows: Vec<(String, BTreeMap<String, f64>)> = table
        .into_iter()
        .map(|(test, envs)| {
            (
                test,
                envs.iter().map(|(e, v)| (e.clone(), median(v))).collect(),
            )
        })
        .collect();
    rows.sort_by(|a, b| {
        let m = |r: &BTreeMap<String, f64>| r.values().copied().fold(0.0, f64::max);
        m(&b.1).total_cmp(&m(&a.1))
    });
    rows.truncate(top);
    rows
}

/// Median duration of the slowest tests, one bar per environment.
pub fn duration_by_environment(rows: &EnvironmentRows) -> Result<Chart, ChartError> {
    let envs: Vec<String> = {
        let mut e: Vec<String> = rows.iter().flat_map(|r| r.1.keys().cloned()).collect();
        e.sort();
        e.dedup();
        e
    };
    let y_top = headroom(rows.iter().flat_map(|r| r.1.values().copied()), 1.0);
    let frame = Frame {
        items: rows.len(),
        y_top,
        y_label_width: 56,
        x_mesh: false,
        x_desc: "test (see the table below)",
        y_desc: "median ms",
        x_label: |x| match ordinal(x) {
            o if o.is_empty() => o,
            o => format!("#{o}"),
        },
        legend: SeriesLabelPosition::MiddleRight,
    };
    draw(
        "duration-by-environment",
        "Test duration per environment",
        frame,
        |chart| {
            let width = 0.8 / envs.len().max(1) as f64;
            for (k, env) in envs.iter().enumerate() {
                let color = PALETTE[k % PALETTE.len()];
                let bars = rows.iter().enumerate().filter_map(|(i, r)| {
                    r.1.get(env).map(|&v| {
                        let x = i as f64 - 0.4 + k as f64 * width;
                        Rectangle::new([(x, 0.0), (x + width, v)], color.filled())
                    })
                });
                chart
                    .draw_series(bars)?
                    .label(env.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                    });
            }
            Ok(())
        },
    )
}
