//! `<results>/latency.svg`: the server's send → deliver percentiles against the load, and the
//! store alone (group commit, no server) at the same rates, dashed, so that a reader sees how
//! much of the latency is the store's.

use plotters::prelude::*;

use crate::{client::BenchResult, pairs::PairsResult, store::GroupCommitResult};

type Pick = fn(&crate::pairs::Percentiles) -> u64;

pub fn draw(path: &std::path::Path, runs: &[PairsResult], store: &[GroupCommitResult]) -> BenchResult<()> {
    let mut pts: Vec<&PairsResult> = runs.iter().collect();
    pts.sort_by(|a, b| a.acked_per_s.total_cmp(&b.acked_per_s));
    let mut floor: Vec<&GroupCommitResult> = store.iter().collect();
    floor.sort_by(|a, b| a.stored_per_s.total_cmp(&b.stored_per_s));
    let x_max =
        pts.iter().map(|r| r.acked_per_s).chain(floor.iter().map(|s| s.stored_per_s)).fold(1.0, f64::max) * 1.05;
    let y_max = pts
        .iter()
        .map(|r| r.deliver_us.p999)
        .chain(floor.iter().map(|s| s.latency_us.p999))
        .map(|us| us as f64 / 1000.0)
        .fold(1.0, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("send → deliver latency against load; dashed: the store alone at the same rates", ("sans-serif", 17))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("messages/s (acknowledged; stored, for the store alone)")
        .y_desc("latency, ms")
        .draw()?;
    let series: [(&str, Pick, RGBColor); 4] =
        [("p50", |p| p.p50, BLUE), ("p90", |p| p.p90, GREEN), ("p99", |p| p.p99, RED), ("p99.9", |p| p.p999, MAGENTA)];
    for (name, f, color) in series {
        let data: Vec<(f64, f64)> = pts.iter().map(|r| (r.acked_per_s, f(&r.deliver_us) as f64 / 1000.0)).collect();
        chart
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))?
            .label(format!("server {name}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(data.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        if floor.is_empty() {
            continue;
        }
        let data: Vec<(f64, f64)> = floor.iter().map(|s| (s.stored_per_s, f(&s.latency_us) as f64 / 1000.0)).collect();
        chart
            .draw_series(DashedLineSeries::new(data.clone(), 6, 4, color.stroke_width(1)))?
            .label(format!("store alone {name}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 8, y), (x + 12, y), (x + 20, y)], color));
        chart.draw_series(data.into_iter().map(|p| Cross::new(p, 3, color)))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    println!("\nchart: {}", path.display());
    Ok(())
}
