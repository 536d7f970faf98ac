//! `--svg`: the figures as one SVG, drawn by plotters' SVG backend alone.
//! Without a font feature plotters estimates text sizes itself and the SVG
//! carries text as `<text>` elements, so no font or system library is needed.

use super::plan::{Impl, Kind, Point, Workload};
use super::record::{Record, Status};
use super::table::sig3;
use crate::probe::Machine;
use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::{SegmentValue, ValueFormatter};
use plotters::prelude::*;
use std::error::Error;
use std::path::Path;

/// What plotters reports, from any backend (only the SVG one is used).
type Res = Result<(), Box<dyn Error + Send + Sync>>;

/// Why the SVG could not be drawn or written: plotters' error, boxed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ChartError(#[source] Box<dyn Error + Send + Sync>);

const PANEL: (u32, u32) = (640, 340);
const FONT: &str = "sans-serif";

/// One bar per implementation: a single workload's main figure.
struct Bars {
    title: String,
    bars: Vec<(String, Option<f64>)>,
}

/// One line per implementation over a sweep (log-scaled x).
struct Lines {
    title: String,
    x_name: &'static str,
    /// A log-scaled y axis, for figures that span orders of magnitude.
    log_y: bool,
    lines: Vec<(String, Vec<(f64, f64)>)>,
}

enum Panel {
    Bars(Bars),
    Lines(Lines),
}

fn color(imp: &str) -> RGBColor {
    // Fixed per implementation, so that bars and lines of one agree.
    let i = Impl::ALL.iter().position(|i| i.name() == imp).unwrap_or(0);
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

fn panels(points: &[Point], records: &[Vec<Record>]) -> Vec<Panel> {
    let mut out = Vec::new();
    let value = |r: &Record, f: fn(&Record) -> Option<f64>| {
        if r.status == Status::Ok {
            f(r)
        } else {
            None
        }
    };
    for (p, rs) in points.iter().zip(records) {
        // `redis` has a table only.
        if matches!(p.workload, Workload::Scaling | Workload::Redis) {
            continue;
        }
        let (title, f): (String, fn(&Record) -> Option<f64>) = match p.kind {
            Kind::Empty => (
                format!("empty: M tasks/s, cap {} (higher is better)", p.cap),
                |r| r.tasks_per_sec.map(|v| v / 1e6),
            ),
            Kind::Sleep => (
                format!("sleep: wall ms, {} tasks, cap {}", p.tasks, p.cap),
                |r| r.wall_ms,
            ),
            Kind::Burst => (
                format!(
                    "burst: wall ms, {} x {} µs on {}",
                    p.tasks, p.work_us, p.cap
                ),
                |r| r.wall_ms,
            ),
            Kind::Latency => ("latency: p99 submit-to-start µs".to_owned(), |r| r.p99_us),
            Kind::Idle => (format!("idle: CPU ms over {} ms idle", p.idle_ms), |r| {
                r.idle_cpu_ms.map(|v| v as f64)
            }),
            Kind::Cold => (
                format!(
                    "cold: p99 µs per round of {} tasks after {} ms idle",
                    p.round_tasks, p.gap_ms
                ),
                |r| r.p99_us,
            ),
            Kind::Join => (
                format!("join: M tasks/s, spawned then joined, cap {}", p.cap),
                |r| r.tasks_per_sec.map(|v| v / 1e6),
            ),
            Kind::Redis => (format!("redis: jobs/s, {} processes", p.procs), |r| {
                r.tasks_per_sec
            }),
            Kind::Map => (format!("map: M inputs/s in order, cap {}", p.cap), |r| {
                r.tasks_per_sec.map(|v| v / 1e6)
            }),
            Kind::MapUnordered => (format!("map: M inputs/s unordered, cap {}", p.cap), |r| {
                r.tasks_per_sec.map(|v| v / 1e6)
            }),
            Kind::Keyed => (
                format!("keyed: M tasks/s over 1,000 keys, cap {}", p.cap),
                |r| r.tasks_per_sec.map(|v| v / 1e6),
            ),
        };
        out.push(Panel::Bars(Bars {
            title,
            bars: rs.iter().map(|r| (r.imp.clone(), value(r, f))).collect(),
        }));
    }
    let sweep = |kind: Kind,
                 title: &str,
                 x_name,
                 log_y,
                 x: fn(&Record) -> f64,
                 y: fn(&Record) -> Option<f64>| {
        let rows: Vec<&Vec<Record>> = points
            .iter()
            .zip(records)
            .filter(|(p, _)| p.workload == Workload::Scaling && p.kind == kind)
            .map(|(_, r)| r)
            .collect();
        let first = rows.first()?;
        let lines = (0..first.len())
            .map(|i| {
                let pts = rows
                    .iter()
                    .filter_map(|rs| {
                        let r = &rs[i];
                        value(r, y).map(|v| (x(r), v))
                    })
                    .collect();
                (first[i].imp.clone(), pts)
            })
            .collect();
        Some(Panel::Lines(Lines {
            title: title.to_owned(),
            x_name,
            log_y,
            lines,
        }))
    };
    out.extend(sweep(
        Kind::Empty,
        "scaling: ns per empty task, log scale (lower is better)",
        "tasks",
        true,
        |r| r.tasks as f64,
        |r| r.ns_per_task,
    ));
    out.extend(sweep(
        Kind::Sleep,
        "scaling: wall ms of 10 waves of sleep tasks",
        "cap",
        false,
        |r| r.cap as f64,
        |r| r.wall_ms,
    ));
    out.extend(sweep(
        Kind::Sleep,
        "scaling: peak RSS MB of 10 waves of sleep tasks",
        "cap",
        false,
        |r| r.cap as f64,
        |r| r.peak_rss_mb,
    ));
    out
}

fn draw_bars<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, b: &Bars) -> Res
where
    DB::ErrorType: 'static,
{
    let top = b.bars.iter().filter_map(|(_, v)| *v).fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.25 } else { 1.0 };
    let n = b.bars.len();
    // A segmented 0..k axis has k + 1 segments; 0..0 would have no width.
    let last = n.saturating_sub(1).max(1);
    let names: Vec<String> = b.bars.iter().map(|(n, _)| n.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(&b.title, (FONT, 16))
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(110)
        .build_cartesian_2d(0.0..top, (0..last).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_label_formatter(&|v| sig3(*v))
        .label_style((FONT, 12))
        .draw()?;
    chart.draw_series(b.bars.iter().enumerate().filter_map(|(i, (imp, v))| {
        let v = (*v)?;
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (v, SegmentValue::Exact(i + 1)),
            ],
            color(imp).filled(),
        );
        bar.set_margin(3, 3, 0, 0);
        Some(bar)
    }))?;
    chart.draw_series(b.bars.iter().enumerate().map(|(i, (_, v))| {
        let label = v.map_or_else(|| "failed".to_owned(), sig3);
        Text::new(
            format!(" {label}"),
            (v.unwrap_or(0.0), SegmentValue::CenterOf(i)),
            (FONT, 12),
        )
    }))?;
    Ok(())
}

fn draw_lines<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, l: &Lines) -> Res
where
    DB::ErrorType: 'static,
{
    let all = l.lines.iter().flat_map(|(_, pts)| pts.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, 0.0f64);
    for &(x, y) in all {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return Ok(());
    }
    if x0 == x1 {
        (x0, x1) = (x0 / 2.0, x1 * 2.0);
    }
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&l.title, (FONT, 16))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(50);
    let x = (x0..x1).log_scale();
    if l.log_y {
        let y = (y0.max(1e-3) / 1.5..y1.max(1e-3) * 1.5).log_scale();
        plot(builder.build_cartesian_2d(x, y)?, l)
    } else {
        plot(
            builder.build_cartesian_2d(x, 0.0..(y1 * 1.15).max(1e-9))?,
            l,
        )
    }
}

fn plot<'a, DB, Y>(mut chart: ChartContext<'a, DB, Cartesian2d<LogCoord<f64>, Y>>, l: &Lines) -> Res
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let points = l.lines.iter().map(|(_, p)| p.len()).max().unwrap_or(1);
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc(l.x_name)
        .x_labels(points + 1)
        .x_label_formatter(&|v| sig3(*v))
        .y_label_formatter(&|v| sig3(*v))
        .label_style((FONT, 12))
        .draw()?;
    for (imp, pts) in &l.lines {
        let c = color(imp);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?
            .label(imp.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], c.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 11))
        .draw()?;
    Ok(())
}

/// Draws every workload's main figure (bars) and the sweeps (lines) into
/// one SVG at `path`.
pub(crate) fn draw(
    path: &Path,
    points: &[Point],
    records: &[Vec<Record>],
    machine: &Machine,
) -> Result<(), ChartError> {
    draw_svg(path, points, records, machine).map_err(ChartError)
}

fn draw_svg(path: &Path, points: &[Point], records: &[Vec<Record>], machine: &Machine) -> Res {
    let panels = panels(points, records);
    let cols = 2;
    let rows = panels.len().div_ceil(cols).max(1);
    let size = (PANEL.0 * cols as u32, PANEL.1 * rows as u32 + 40);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let mut title = format!(
        "workpool bench on {} cores ({}), Linux {}",
        machine.cores, machine.cpu, machine.kernel
    );
    match points.first().map_or(0, |p| p.hogs) {
        0 => {}
        1 => title.push_str(", with 1 hog thread"),
        n => title.push_str(&format!(", with {n} hog threads")),
    }
    let body = root.titled(&title, (FONT, 20))?;
    for (area, panel) in body.split_evenly((rows, cols)).iter().zip(&panels) {
        match panel {
            Panel::Bars(b) => draw_bars(area, b)?,
            Panel::Lines(l) => draw_lines(area, l)?,
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::child::ChildReport;
    use crate::bench::plan::{points, Sizes};

    #[test]
    fn draws_bars_and_sweeps_into_an_svg() {
        let ps = points(
            &[
                Workload::Empty,
                Workload::Scaling,
                Workload::Cold,
                Workload::Join,
            ],
            &Sizes::quick(),
            None,
            None,
            2,
            0,
        );
        let records: Vec<Vec<Record>> = ps
            .iter()
            .map(|p| {
                let report = ChildReport {
                    tasks: p.tasks,
                    cap: p.cap,
                    completed: p.tasks,
                    build_ms: 1.0,
                    run_ms: p.tasks as f64 / 1e4,
                    release_ms: 0.0,
                    peak_rss_kb: 4096,
                    peak_threads: p.cap + 1,
                    hogs: 0,
                    latency_us: None,
                    idle: None,
                    rounds_us: None,
                    server_cpu_ms: None,
                    consumers_cpu_ms: None,
                    voluntary_switches: 0,
                    involuntary_switches: 0,
                };
                vec![
                    Record::from_runs(
                        p,
                        Impl::Workpool,
                        p.tasks,
                        true,
                        std::slice::from_ref(&report),
                    ),
                    Record::not_run(p, Impl::Rayon, p.tasks, true, 1, Status::Failed, "x".into()),
                ]
            })
            .collect();
        let path = std::env::temp_dir().join(format!("workpool-chart-{}.svg", std::process::id()));
        draw(&path, &ps, &records, &Machine::read()).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(100)]);
        assert!(svg.contains("empty: M tasks/s"));
        assert!(svg.contains("scaling: ns per empty task"));
        assert!(svg.contains("cold: p99"));
        assert!(svg.contains("join: M tasks/s"));
        let texts: Vec<&str> = svg.lines().map(str::trim).collect();
        assert!(texts.contains(&"workpool") && texts.contains(&"rayon"));
        assert!(texts.contains(&"failed"));
    }
}
