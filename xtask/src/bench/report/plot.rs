//! `lb.png`: connection rate, connect latency and sync time against N, drawn by gnuplot
//! (Debian's `gnuplot-nox`, pngcairo) from a data file written here.

use super::super::{Impl, Options};
use crate::shell;
use std::fmt::Write;
use std::path::PathBuf;

/// The medians of one (N, implementation); seconds for the syncs, µs for latencies.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub n: u32,
    pub imp: Impl,
    pub rate: Option<f64>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub full: Option<f64>,
    pub change: Option<f64>,
}

const COLORS: [(Impl, &str); 4] = [
    (Impl::Direct, "#555555"),
    (Impl::Ferry, "#1b9e77"),
    (Impl::Iptables, "#d95f02"),
    (Impl::Nftables, "#7570b3"),
];

/// Draws the plot; `None` if gnuplot is missing or fails (the report says so).
pub fn draw(options: &Options, points: &[Point]) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("ferry-bench-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let png = options.out.join("lb.png");
    let mut data = String::new();
    // One gnuplot data block per implementation: N rate p50 p99 full_ms change_ms.
    for (imp, _) in COLORS {
        let _ = writeln!(data, "# {}", imp.name());
        for p in points.iter().filter(|p| p.imp == imp) {
            let v = |x: Option<f64>, scale: f64| {
                x.map_or("?".to_string(), |x| format!("{}", x * scale))
            };
            let _ = writeln!(
                data,
                "{} {} {} {} {} {}",
                p.n,
                v(p.rate, 1.0),
                v(p.p50, 1.0),
                v(p.p99, 1.0),
                v(p.full, 1000.0),
                v(p.change, 1000.0)
            );
        }
        data.push_str("\n\n");
    }
    let data_path = dir.join("lb.dat");
    std::fs::write(&data_path, data).ok()?;
    let d = data_path.display();
    let series = |column: &str, dashed: bool, skip_direct: bool, suffix: &str| -> String {
        COLORS
            .iter()
            .enumerate()
            .filter(|(_, (imp, _))| !(skip_direct && *imp == Impl::Direct))
            .filter(|(_, (imp, _))| options.impls.contains(imp))
            .map(|(k, (imp, color))| {
                format!(
                    "'{d}' index {k} using 1:{column} with linespoints lw 2 pt 7 dt {} lc rgb '{color}' title '{}{}'",
                    if dashed { 2 } else { 1 },
                    imp.name(),
                    suffix
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let script = format!(
        "set terminal pngcairo size 1650,520 font 'sans,10'\n\
         set output '{png}'\n\
         set datafile missing '?'\n\
         set multiplot layout 1,3 title 'cargo xtask bench lb: N Services x 10 endpoints ({rounds} round(s), medians)'\n\
         set logscale x\nset xtics ('100' 100, '1k' 1000, '10k' 10000)\nset xrange [70:14000]\n\
         set grid\nset key top right\nset xlabel 'Services (N)'\n\
         set title 'TCP connections/s to a ClusterIP (direct = to the endpoint)'\nset ylabel 'connections/s'\nset yrange [0:*]\n\
         plot {rate}\n\
         set title 'connect() latency: p50 solid, p99 dashed'\nset ylabel 'microseconds'\nset logscale y\nset yrange [*:*]\n\
         plot {p50}, {p99}\n\
         set title 'programming time: full sync solid, one endpoint change dashed'\nset ylabel 'milliseconds'\n\
         plot {full}, {change}\n\
         unset multiplot\n",
        png = png.display(),
        rounds = options.rounds,
        rate = series("2", false, false, ""),
        p50 = series("3", false, false, " p50"),
        p99 = series("4", true, false, " p99"),
        full = series("5", false, true, " full"),
        change = series("6", true, true, " change"),
    );
    let script_path = dir.join("lb.gp");
    std::fs::write(&script_path, script).ok()?;
    let ok = shell::command("gnuplot", &[&script_path.to_string_lossy()])
        .status()
        .is_ok_and(|s| s.success());
    let _ = std::fs::remove_dir_all(&dir);
    (ok && png.exists()).then_some(png)
}
