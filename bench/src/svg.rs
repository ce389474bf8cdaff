//! The latency chart: per scenario, bars for p50, p90, p99 and p99.9 on a logarithmic axis.

use std::fmt::Write as _;

/// One scenario's row of bars.
#[derive(Debug)]
pub struct Row<'a> {
    pub label: &'a str,
    /// p50, p90, p99, p99.9 in milliseconds.
    pub values: [f64; 4],
}

const SERIES: [(&str, &str); 4] = [("p50", "#4c78a8"), ("p90", "#72b7b2"), ("p99", "#f58518"), ("p99.9", "#e45756")];
const WIDTH: f64 = 900.0;
const LABEL_WIDTH: f64 = 170.0;
const RIGHT_MARGIN: f64 = 30.0;
const TOP: f64 = 50.0;
const BAR_HEIGHT: f64 = 7.0;
const ROW_GAP: f64 = 12.0;

/// An SVG document charting `rows`.
pub fn latency_chart(title: &str, rows: &[Row<'_>]) -> String {
    let positive = rows.iter().flat_map(|row| row.values).filter(|value| *value > 0.0);
    let smallest = positive.clone().fold(f64::INFINITY, f64::min);
    let largest = positive.fold(0.0, f64::max);
    // Whole decades around the data, so grid lines fall on 0.1, 1, 10, ... ms.
    let low = if smallest.is_finite() { smallest.log10().floor() } else { -1.0 };
    let high = if largest > 0.0 { largest.log10().ceil().max(low + 1.0) } else { low + 1.0 };
    let plot_width = WIDTH - LABEL_WIDTH - RIGHT_MARGIN;
    let x = |value: f64| LABEL_WIDTH + (value.max(10_f64.powf(low)).log10() - low) / (high - low) * plot_width;
    let row_height = BAR_HEIGHT * SERIES.len() as f64 + ROW_GAP;
    let height = TOP + row_height * rows.len() as f64 + 40.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ =
        writeln!(svg, r#"<text x="{LABEL_WIDTH}" y="20" font-size="14" font-weight="bold">{}</text>"#, escape(title));
    for (index, (name, colour)) in SERIES.iter().enumerate() {
        let left = LABEL_WIDTH + index as f64 * 80.0;
        let _ = writeln!(svg, r#"<rect x="{left}" y="30" width="10" height="10" fill="{colour}"/>"#);
        let _ = writeln!(svg, r#"<text x="{}" y="39">{name}</text>"#, left + 14.0);
    }
    let axis_bottom = TOP + row_height * rows.len() as f64;
    for decade in (low as i32)..=(high as i32) {
        let value = 10_f64.powi(decade);
        let left = x(value);
        let _ = writeln!(svg, r##"<line x1="{left:.1}" y1="{TOP}" x2="{left:.1}" y2="{axis_bottom}" stroke="#ddd"/>"##);
        let _ = writeln!(
            svg,
            r#"<text x="{left:.1}" y="{}" text-anchor="middle">{} ms</text>"#,
            axis_bottom + 16.0,
            format_ms(value)
        );
    }
    for (row_index, row) in rows.iter().enumerate() {
        let top = TOP + row_index as f64 * row_height;
        let middle = top + BAR_HEIGHT * 2.0 + 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{middle}" text-anchor="end">{}</text>"#,
            LABEL_WIDTH - 8.0,
            escape(row.label)
        );
        for (index, ((name, colour), value)) in SERIES.iter().zip(row.values).enumerate() {
            let y = top + index as f64 * BAR_HEIGHT;
            let width = (x(value) - LABEL_WIDTH).max(1.0);
            let _ = writeln!(
                svg,
                r#"<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1}" height="{}" fill="{colour}"><title>{} {name}: {value} ms</title></rect>"#,
                BAR_HEIGHT - 1.0,
                escape(row.label)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn format_ms(value: f64) -> String {
    if value >= 1.0 { format!("{value:.0}") } else { format!("{value}") }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_a_bar_per_percentile_and_decade_grid_lines() {
        let rows = [
            Row { label: "hello", values: [0.05, 0.08, 0.2, 0.5] },
            Row { label: "create-order <open>", values: [12.0, 20.0, 45.0, 80.0] },
        ];
        let svg = latency_chart("Latency", &rows);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<title>").count(), 8);
        // From 0.01 ms to 100 ms: five grid lines.
        assert_eq!(svg.matches("<line").count(), 5);
        assert!(svg.contains("create-order &lt;open&gt;"));
        assert!(svg.contains(">100 ms<") && svg.contains(">0.01 ms<"));
    }

    #[test]
    fn a_chart_without_data_is_still_a_valid_document() {
        let svg = latency_chart("Latency", &[Row { label: "nothing", values: [0.0; 4] }]);
        assert!(svg.contains("</svg>"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
