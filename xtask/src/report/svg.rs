//! A small SVG line chart for the benchmark report: one series of medians with their spread
//! as error bars, and a dashed target line.

use std::fmt::Write as _;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// `points` are `(x, median, low, high)`; `target` is drawn as a dashed horizontal line.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, points: &[(f64, f64, f64, f64)], target: f64) -> String {
    let x_max = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let highest = points.iter().map(|p| p.3).filter(|v| v.is_finite()).fold(target, f64::max) * 1.05;
    let step = nice_step(highest / 5.0);
    let y_max = (highest / step).ceil() * step;
    let x = |v: f64| LEFT + v / x_max * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| HEIGHT - BOTTOM - v / y_max * (HEIGHT - TOP - BOTTOM);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    // Axes, ticks and labels.
    let (x0, y0) = (x(0.0), y(0.0));
    let _ = writeln!(svg, r#"<path d="M{x0},{TOP} V{y0} H{}" stroke="black" fill="none"/>"#, WIDTH - RIGHT);
    for i in 0..=(y_max / step).round() as u32 {
        let v = step * f64::from(i);
        let (right, at, label_x, label_y) = (WIDTH - RIGHT, y(v), x0 - 6.0, y(v) + 4.0);
        let _ = writeln!(
            svg,
            r##"<line x1="{x0}" x2="{right}" y1="{at:.1}" y2="{at:.1}" stroke="#ddd"/><text x="{label_x}" y="{label_y:.1}" text-anchor="end">{v:.0}</text>"##
        );
    }
    for p in points {
        let _ = writeln!(svg, r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#, x(p.0), y0 + 16.0, p.0);
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (x0 + WIDTH - RIGHT) / 2.0,
        HEIGHT - 12.0,
        escape(x_label)
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        (TOP + y0) / 2.0,
        escape(y_label)
    );
    // Target, spread and medians.
    let (right, at, label_x, label_y) = (WIDTH - RIGHT, y(target), WIDTH - RIGHT - 4.0, y(target) - 6.0);
    let _ = writeln!(
        svg,
        r##"<line x1="{x0}" x2="{right}" y1="{at:.1}" y2="{at:.1}" stroke="#c00" stroke-dasharray="6 4"/><text x="{label_x}" y="{label_y:.1}" fill="#c00" text-anchor="end">target {target}</text>"##
    );
    for p in points.iter().filter(|p| p.2.is_finite() && p.3.is_finite()) {
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="#36c"/>"##,
            x(p.0),
            y(p.2),
            y(p.3)
        );
    }
    let path: Vec<String> =
        points.iter().filter(|p| p.1.is_finite()).map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1))).collect();
    let _ = writeln!(svg, r##"<polyline points="{}" stroke="#36c" stroke-width="2" fill="none"/>"##, path.join(" "));
    for p in points.iter().filter(|p| p.1.is_finite()) {
        let _ = writeln!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="#36c"/><text x="{:.1}" y="{:.1}" fill="#36c">{:.1}</text>"##,
            x(p.0),
            y(p.1),
            x(p.0) + 6.0,
            y(p.1) - 6.0,
            p.1
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.max(1e-9).log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|&s| s >= raw).unwrap_or(10.0 * power)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(80.0), 100.0);
        assert_eq!(nice_step(150.3), 200.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(5.0), 5.0);
    }

    #[test]
    fn a_chart_has_every_point_and_the_target() {
        let svg = line_chart("t <1>", "x", "y", &[(10.0, 300.5, 290.0, 310.0), (100.0, 368.0, 340.0, 375.0)], 200.0);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("target 200") && svg.contains("t &lt;1&gt;") && svg.contains(">368.0<"));
    }
}
