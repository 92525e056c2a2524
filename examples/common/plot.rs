//! A learning curve as a self-contained SVG line plot: evaluation mean against environment
//! steps, a shaded mean ± std band, an optional dashed "solved" threshold, axes with tick
//! labels and a title. Hand-written SVG, so the examples need no plotting crate.

use std::fmt::Write as _;

/// One evaluation: when it ran and how it went.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurvePoint {
    /// Environment steps when the evaluation ran.
    pub timesteps: u64,
    /// Mean episode return.
    pub mean: f64,
    /// Standard deviation of the episode returns.
    pub std: f64,
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 460.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// Axis range `[lo, hi]` widened to multiples of a "nice" step (1, 2 or 5 times a power of
/// ten) giving about `target` intervals; returns `(lo, hi, step)`.
fn nice_axis(lo: f64, hi: f64, target: f64) -> (f64, f64, f64) {
    let (lo, hi) = if hi - lo > f64::EPSILON * hi.abs().max(1.0) {
        (lo, hi)
    } else {
        // A flat curve (or a single point): give it some room.
        let pad = (lo.abs() * 0.1).max(1.0);
        (lo - pad, hi + pad)
    };
    let raw = (hi - lo) / target;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

/// Environment steps for a tick label: 0, 500, 20k, 1.5M.
fn steps_label(v: f64) -> String {
    let a = v.abs();
    let (x, suffix) = if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{suffix}")
}

/// A return for a tick label, with as many decimals as the tick step needs.
fn value_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    let s = format!("{v:.decimals$}");
    // "-0" reads oddly on an axis.
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG document of a learning curve titled `title`, with a dashed line at `threshold` when
/// given. Non-finite values are left out of the plot.
pub fn learning_curve_svg(title: &str, points: &[CurvePoint], threshold: Option<f64>) -> String {
    let points: Vec<CurvePoint> = points
        .iter()
        .copied()
        .filter(|p| p.mean.is_finite() && p.std.is_finite())
        .collect();
    let mut svg = String::new();
    // Writing into a String cannot fail: the results of write! are ignored below.
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );

    let t_max = points
        .iter()
        .map(|p| p.timesteps as f64)
        .fold(0.0, f64::max);
    let mut y_lo = points
        .iter()
        .map(|p| p.mean - p.std)
        .fold(f64::INFINITY, f64::min);
    let mut y_hi = points
        .iter()
        .map(|p| p.mean + p.std)
        .fold(f64::NEG_INFINITY, f64::max);
    if let Some(t) = threshold.filter(|t| t.is_finite()) {
        y_lo = y_lo.min(t);
        y_hi = y_hi.max(t);
    }
    if !y_lo.is_finite() || !y_hi.is_finite() {
        (y_lo, y_hi) = (0.0, 1.0);
    }
    let (x0, x1, x_step) = nice_axis(0.0, t_max.max(1.0), 8.0);
    let (y0, y1, y_step) = nice_axis(y_lo, y_hi, 6.0);
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |t: f64| LEFT + (t - x0) / (x1 - x0) * plot_w;
    let py = |v: f64| TOP + (y1 - v) / (y1 - y0) * plot_h;

    // Grid and tick labels.
    let n_x = ((x1 - x0) / x_step).round() as usize;
    for i in 0..=n_x {
        let t = x0 + i as f64 * x_step;
        let x = px(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#e5e5e5"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            steps_label(t)
        );
    }
    let n_y = ((y1 - y0) / y_step).round() as usize;
    for i in 0..=n_y {
        let v = y0 + i as f64 * y_step;
        let y = py(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 8.0,
            y + 4.0,
            value_label(v, y_step)
        );
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">environment steps</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 15.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">evaluation return (mean ± std)</text>"#,
        TOP + plot_h / 2.0
    );

    if let Some(t) = threshold.filter(|t| t.is_finite()) {
        let y = py(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#2ca02c" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#2ca02c">solved: {}</text>"##,
            LEFT + plot_w,
            LEFT + plot_w - 6.0,
            y - 6.0,
            value_label(t, y_step.min(1.0))
        );
    }

    if points.is_empty() {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#777">no evaluations yet</text>"##,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    } else {
        // The band: along the upper edge, then back along the lower one.
        let mut band = String::new();
        for p in &points {
            let _ = write!(
                band,
                "{:.1},{:.1} ",
                px(p.timesteps as f64),
                py(p.mean + p.std)
            );
        }
        for p in points.iter().rev() {
            let _ = write!(
                band,
                "{:.1},{:.1} ",
                px(p.timesteps as f64),
                py(p.mean - p.std)
            );
        }
        let _ = writeln!(
            svg,
            r##"<polygon points="{}" fill="#1f77b4" fill-opacity="0.2" stroke="none"/>"##,
            band.trim_end()
        );
        let line: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.timesteps as f64), py(p.mean)))
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
            line.join(" ")
        );
        for p in &points {
            let _ = writeln!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#1f77b4"><title>{} steps: {:.2} ± {:.2}</title></circle>"##,
                px(p.timesteps as f64),
                py(p.mean),
                p.timesteps,
                p.mean,
                p.std
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}
