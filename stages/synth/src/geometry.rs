//! Object sizes that follow the real benchmarks' box areas.
//!
//! The evaluators binarise the top half of a map, so a box of area fraction `a < 0.5` caps a sample's cIoU at
//! `2a`: a synthetic set with small objects cannot show cIoU@0.5 at all. AVS-Synth therefore draws each object's
//! box area from a quantile function (`[synth] single_box_area`, `duet_box_area`) shaped like VGG-SS's largest
//! box per clip (single-source clips) and MUSIC-Duet's per-source boxes (duet clips and silent objects), and
//! sizes the object's square so that its tight box has that area.
//!
//! [`AreaReference`] holds the benchmarks' quantiles: computed from the annotation files when they are at hand
//! (`vggss/vggss.json`, `music/music_duet.json` under a datasets folder), else the numbers measured on them and
//! kept here. [`GeometryReport`] sets what a generated set has beside them.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::catalogue::Shape;
use crate::render::inside;

/// The quantiles compared for single-source clips (VGG-SS) and duet sources (MUSIC-Duet).
pub const SINGLE_QUANTILES: [f64; 5] = [0.10, 0.25, 0.50, 0.75, 0.90];
/// See [`SINGLE_QUANTILES`].
pub const DUET_QUANTILES: [f64; 3] = [0.10, 0.50, 0.90];

/// VGG-SS (5,158 test frames), area of the largest box per frame after clipping to [0, 1].
const VGGSS_LARGEST_BOX: [f64; 5] = [0.049, 0.110, 0.242, 0.449, 0.669];
/// MUSIC-Duet (1,020 frames, 2,040 sources), area of each source's box.
const MUSIC_DUET_SOURCE_BOX: [f64; 3] = [0.058, 0.100, 0.188];

/// Every shape drawn, in the order [`shape_extent`] caches them.
const SHAPES: [Shape; 8] = [
    Shape::Circle,
    Shape::Square,
    Shape::Triangle,
    Shape::Diamond,
    Shape::Hexagon,
    Shape::Cross,
    Shape::Ring,
    Shape::Ellipse,
];

/// Fractions of its square's side that a shape spans horizontally and vertically (an ellipse is wide and flat,
/// a square leaves a margin), measured once on a fine grid with the same `inside` rule the renderer uses.
pub fn shape_extent(shape: Shape) -> (f64, f64) {
    static EXTENTS: OnceLock<[(f64, f64); 8]> = OnceLock::new();
    let table = EXTENTS.get_or_init(|| SHAPES.map(measure_extent));
    let i = SHAPES.iter().position(|s| *s == shape).unwrap_or(0);
    table[i]
}

fn measure_extent(shape: Shape) -> (f64, f64) {
    const N: usize = 400;
    let coord = |i: usize| (i as f64 + 0.5) / N as f64 * 2.0 - 1.0;
    let (mut u0, mut u1, mut v0, mut v1) = (1.0f64, -1.0f64, 1.0f64, -1.0f64);
    for iy in 0..N {
        for ix in 0..N {
            let (u, v) = (coord(ix), coord(iy));
            if inside(shape, u, v) {
                u0 = u0.min(u);
                u1 = u1.max(u);
                v0 = v0.min(v);
                v1 = v1.max(v);
            }
        }
    }
    (((u1 - u0) / 2.0).max(0.01), ((v1 - v0) / 2.0).max(0.01))
}

/// The area at quantile `q` of the quantile function given by `knots` (linear between knots).
pub fn area_at(knots: &[[f64; 2]], q: f64) -> f64 {
    let q = q.clamp(0.0, 1.0);
    for w in knots.windows(2) {
        let ([q0, a0], [q1, a1]) = (w[0], w[1]);
        if q <= q1 {
            let t = if q1 > q0 { (q - q0) / (q1 - q0) } else { 0.0 };
            return a0 + t * (a1 - a0);
        }
    }
    knots.last().map_or(0.0, |k| k[1])
}

/// Side in pixels of the square whose `shape` has a tight box of `area` (fraction of a `width × height` frame).
pub fn side_for_area(area: f64, shape: Shape, width: u32, height: u32) -> f64 {
    let (fw, fh) = shape_extent(shape);
    (area * f64::from(width) * f64::from(height) / (fw * fh)).sqrt()
}

/// Quantile `q` of `values` with linear interpolation between order statistics (numpy's default), NaN when
/// empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pos = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The benchmarks' box-area quantiles AVS-Synth is compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AreaReference {
    /// Where the numbers come from (the annotation files read, or "built in").
    pub source: String,
    /// VGG-SS largest box per frame at [`SINGLE_QUANTILES`].
    pub single: Vec<f64>,
    /// MUSIC-Duet source boxes at [`DUET_QUANTILES`].
    pub duet: Vec<f64>,
}

impl AreaReference {
    /// The numbers measured on the benchmark files, kept here for hosts without them.
    pub fn built_in() -> Self {
        Self {
            source: "built in (VGG-SS vggss.json, MUSIC music_duet.json)".into(),
            single: VGGSS_LARGEST_BOX.to_vec(),
            duet: MUSIC_DUET_SOURCE_BOX.to_vec(),
        }
    }

    /// Computed from `dir/vggss/vggss.json` and `dir/music/music_duet.json` when both exist, else
    /// [`AreaReference::built_in`]. A file that exists but cannot be read is an error naming it.
    pub fn from_datasets_dir(dir: &Path) -> Result<Self> {
        let vggss = dir.join("vggss").join("vggss.json");
        let music = dir.join("music").join("music_duet.json");
        if !vggss.is_file() || !music.is_file() {
            return Ok(Self::built_in());
        }
        let single = vggss_largest_box_areas(&vggss)?;
        let duet = music_duet_source_areas(&music)?;
        Ok(Self {
            source: format!("{} and {}", vggss.display(), music.display()),
            single: SINGLE_QUANTILES
                .iter()
                .map(|&q| quantile(&single, q))
                .collect(),
            duet: DUET_QUANTILES.iter().map(|&q| quantile(&duet, q)).collect(),
        })
    }
}

fn read_json_list(path: &Path) -> Result<Vec<serde_json::Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a JSON list", path.display()))
}

fn numbers(v: &serde_json::Value) -> Option<Vec<f64>> {
    v.as_array()?
        .iter()
        .map(serde_json::Value::as_f64)
        .collect()
}

/// Area of the largest box (`[x1, y1, x2, y2]`, clipped to [0, 1]) of every VGG-SS entry.
fn vggss_largest_box_areas(path: &Path) -> Result<Vec<f64>> {
    let entries = read_json_list(path)?;
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let boxes = e["bbox"]
                .as_array()
                .with_context(|| format!("{}: entry {i} has no `bbox` list", path.display()))?;
            let mut largest = 0.0f64;
            for b in boxes {
                let c = numbers(b).filter(|c| c.len() == 4).with_context(|| {
                    format!("{}: entry {i}: a box is not 4 numbers", path.display())
                })?;
                let c: Vec<f64> = c.iter().map(|v| v.clamp(0.0, 1.0)).collect();
                largest = largest.max((c[2] - c[0]).max(0.0) * (c[3] - c[1]).max(0.0));
            }
            Ok(largest)
        })
        .collect()
}

/// Area of both sources' boxes (`[x, y, w, h]`) of every MUSIC-Duet entry.
fn music_duet_source_areas(path: &Path) -> Result<Vec<f64>> {
    let entries = read_json_list(path)?;
    let mut areas = Vec::with_capacity(entries.len() * 2);
    for (i, e) in entries.iter().enumerate() {
        for key in ["bbox_src1", "bbox_src2"] {
            let b = numbers(&e[key]).filter(|b| b.len() == 4).with_context(|| {
                format!("{}: entry {i}: `{key}` is not 4 numbers", path.display())
            })?;
            areas.push(b[2] * b[3]);
        }
    }
    Ok(areas)
}

/// One row of [`GeometryReport`].
#[derive(Debug, Clone, Serialize)]
pub struct QuantileRow {
    /// `single` or `duet`.
    pub kind: &'static str,
    /// The quantile (0.5 = median).
    pub q: f64,
    /// Generated box area at `q`.
    pub generated: f64,
    /// The benchmark's.
    pub reference: f64,
}

/// Box-area quantiles of a generated set beside the benchmarks'.
#[derive(Debug, Clone, Serialize)]
pub struct GeometryReport {
    /// Where the reference numbers come from.
    pub reference_source: String,
    /// One row per compared quantile.
    pub rows: Vec<QuantileRow>,
}

impl GeometryReport {
    /// Compares the sounding-object box areas of single-source clips (`single`) and of duet clips' sources
    /// (`duet`) with `reference`.
    pub fn new(single: &[f64], duet: &[f64], reference: &AreaReference) -> Self {
        let rows = SINGLE_QUANTILES
            .iter()
            .zip(&reference.single)
            .map(|(&q, &r)| ("single", q, quantile(single, q), r))
            .chain(
                DUET_QUANTILES
                    .iter()
                    .zip(&reference.duet)
                    .map(|(&q, &r)| ("duet", q, quantile(duet, q), r)),
            )
            .map(|(kind, q, generated, reference)| QuantileRow {
                kind,
                q,
                generated,
                reference,
            })
            .collect();
        Self {
            reference_source: reference.source.clone(),
            rows,
        }
    }

    /// Largest gap between a generated and a reference quantile, in area fraction.
    pub fn max_gap(&self) -> f64 {
        self.rows
            .iter()
            .map(|r| (r.generated - r.reference).abs())
            .fold(0.0, f64::max)
    }

    /// A small text table (percent of the frame).
    pub fn table(&self) -> String {
        let mut out = format!(
            "box area (% of frame)   generated   reference ({})\n",
            self.reference_source
        );
        for r in &self.rows {
            out.push_str(&format!(
                "  {:<6} p{:<3}          {:>6.1}      {:>6.1}\n",
                r.kind,
                (r.q * 100.0).round(),
                r.generated * 100.0,
                r.reference * 100.0
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_function_interpolates_between_knots() {
        let knots = [[0.0, 0.1], [0.5, 0.2], [1.0, 0.6]];
        assert_eq!(area_at(&knots, 0.0), 0.1);
        assert!((area_at(&knots, 0.25) - 0.15).abs() < 1e-12);
        assert!((area_at(&knots, 0.75) - 0.4).abs() < 1e-12);
        assert_eq!(area_at(&knots, 1.0), 0.6);
        // numpy: np.percentile([1, 2, 3, 4], 25) = 1.75
        assert!((quantile(&[4.0, 1.0, 3.0, 2.0], 0.25) - 1.75).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn shape_extents_match_their_outlines() {
        let (w, h) = shape_extent(Shape::Circle);
        assert!((w - 1.0).abs() < 0.01 && (h - 1.0).abs() < 0.01, "{w} {h}");
        let (w, h) = shape_extent(Shape::Square);
        assert!(
            (w - 0.85).abs() < 0.01 && (h - 0.85).abs() < 0.01,
            "{w} {h}"
        );
        let (w, h) = shape_extent(Shape::Ellipse);
        assert!(
            (w - 1.0).abs() < 0.01 && (h - 0.45f64.sqrt()).abs() < 0.01,
            "{w} {h}"
        );
    }

    #[test]
    fn missing_benchmark_files_fall_back_to_the_built_in_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let r = AreaReference::from_datasets_dir(dir.path()).unwrap();
        assert_eq!(r, AreaReference::built_in());
    }

    #[test]
    fn reference_quantiles_are_computed_from_annotation_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("vggss")).unwrap();
        std::fs::create_dir_all(dir.path().join("music")).unwrap();
        // Largest boxes of 0.04, 0.25 (the second box is larger than the first) and a dirty one clipped to 1.
        std::fs::write(
            dir.path().join("vggss/vggss.json"),
            r#"[{"file":"a","class":"x","bbox":[[0,0,0.2,0.2]]},
                {"file":"b","class":"x","bbox":[[0,0,0.1,0.1],[0,0,0.5,0.5]]},
                {"file":"c","class":"x","bbox":[[-3e16,0,2,1]]}]"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("music/music_duet.json"),
            r#"[{"file":"d","bbox_src1":[0,0,0.1,0.5],"bbox_src2":[0.5,0.5,0.2,0.2]}]"#,
        )
        .unwrap();
        let r = AreaReference::from_datasets_dir(dir.path()).unwrap();
        assert!((r.single[2] - 0.25).abs() < 1e-12, "{:?}", r.single);
        assert!(
            (r.single[4] - (0.25 + 0.8 * 0.75)).abs() < 1e-12,
            "{:?}",
            r.single
        );
        assert!((r.duet[1] - 0.045).abs() < 1e-12, "{:?}", r.duet);
        std::fs::write(dir.path().join("music/music_duet.json"), "{").unwrap();
        let err = AreaReference::from_datasets_dir(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("music_duet.json"), "{err}");
    }
}
