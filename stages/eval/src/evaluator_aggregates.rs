//! Aggregates only one public evaluator reports, beside the common ones of [`Aggregates`]:
//! T-VSL's mean IoU, DSOL's NSA, SLAVC's confidence-based detection statistics and AVGN's
//! per-source averages.
//!
//! [`Aggregates`]: crate::report::Aggregates

use crate::metrics::auc::{success_rate, Comparison};
use crate::metrics::detection::{
    f1, finalize_stats, precision_recall, DetectionReport, DetectionStats, Scored, Subset,
};
use crate::protocol::{Assignment, Protocol};
use crate::report::ScoreReport;
use crate::scoring::{EntryScore, SampleScore};
use crate::summation::numpy_mean;
use serde::{Deserialize, Serialize};

/// T-VSL's printed `IoU@t`: the mean smoothed IoU with `p ≥ t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanIou {
    pub threshold: f64,
    pub value: f64,
}

/// AVGN `validate_multi` numbers of one source index (one `EvaluatorFull`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStats {
    pub source: usize,
    pub entries: usize,
    /// `precision_at_10`: fraction of visible entries with `cIoU > threshold`.
    pub precision: f64,
    /// `piap_average`: mean swapped pixel AP.
    pub piap: f64,
    /// `f1_at_30`: F1 at the default confidence and cIoU threshold.
    pub f1: f64,
}

/// AVGN's reported numbers: each source's, and their mean (`(e0 + e1) / 2` for a duet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerSourceStats {
    pub precision_threshold: f64,
    pub f1_ciou_threshold: f64,
    pub sources: Vec<SourceStats>,
    pub precision: f64,
    pub piap: f64,
    pub f1: f64,
}

/// The evaluator-specific aggregates a protocol asks for (all `None` for the others).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EvaluatorAggregates {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_iou: Option<MeanIou>,
    /// DSOL NSA: mean over the scored frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nsa: Option<f64>,
    /// SLAVC `finalize_stats`, in its loop order (cIoU threshold, then all / visible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<Vec<DetectionStats>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_source: Option<PerSourceStats>,
}

fn scored(entries: &[&EntryScore]) -> Vec<Scored> {
    entries
        .iter()
        .filter_map(|e| {
            e.detection.map(|d| Scored {
                gt_boxes: d.gt_boxes,
                ciou: e.ciou,
                confidence: d.confidence,
            })
        })
        .collect()
}

fn per_source(
    entries: &[&EntryScore],
    precision_threshold: f64,
    f1_ciou_threshold: f64,
    default_confidence: f64,
) -> PerSourceStats {
    let count = entries
        .iter()
        .filter_map(|e| e.slot)
        .max()
        .map_or(0, |m| m + 1);
    let sources: Vec<SourceStats> = (0..count)
        .map(|j| {
            let mine: Vec<&EntryScore> = entries
                .iter()
                .copied()
                .filter(|e| e.slot == Some(j))
                .collect();
            let records = scored(&mine);
            let visible: Vec<f64> = records
                .iter()
                .filter(|r| r.gt_boxes > 0)
                .map(|r| r.ciou)
                .collect();
            let aps: Vec<f64> = mine.iter().filter_map(|e| e.ap).collect();
            let (p, r) = precision_recall(&records, default_confidence, f1_ciou_threshold);
            SourceStats {
                source: j,
                entries: mine.len(),
                precision: success_rate(&visible, precision_threshold, Comparison::Gt),
                piap: numpy_mean(&aps),
                f1: f1(p, r),
            }
        })
        .collect();
    let mean = |f: fn(&SourceStats) -> f64| {
        sources.iter().map(f).fold(0.0, |a, b| a + b) / sources.len() as f64
    };
    PerSourceStats {
        precision_threshold,
        f1_ciou_threshold,
        precision: mean(|s| s.precision),
        piap: mean(|s| s.piap),
        f1: mean(|s| s.f1),
        sources,
    }
}

/// The protocol's evaluator-specific aggregates over the counted samples; `None` when it has none.
pub fn aggregate(samples: &[SampleScore], p: &Protocol) -> Option<EvaluatorAggregates> {
    let counted: Vec<&SampleScore> = samples.iter().filter(|s| s.counted).collect();
    let entries: Vec<&EntryScore> = counted.iter().flat_map(|s| &s.entries).collect();
    let out = EvaluatorAggregates {
        mean_iou: p.iou_threshold.map(|threshold| MeanIou {
            threshold,
            value: numpy_mean(&entries.iter().filter_map(|e| e.iou).collect::<Vec<_>>()),
        }),
        nsa: (p.assignment == Assignment::ClassMaps)
            .then(|| numpy_mean(&counted.iter().filter_map(|s| s.nsa).collect::<Vec<_>>())),
        detection: match p.detection.as_ref().map(|d| &d.report) {
            Some(DetectionReport::FinalizeStats { ciou_thresholds }) => {
                let records = scored(&entries);
                Some(
                    ciou_thresholds
                        .iter()
                        .flat_map(|&t| {
                            [Subset::All, Subset::Visible]
                                .map(|subset| finalize_stats(&records, subset, t))
                        })
                        .collect(),
                )
            }
            _ => None,
        },
        per_source: match p.detection.as_ref().map(|d| &d.report) {
            Some(&DetectionReport::PerSource {
                precision_threshold,
                f1_ciou_threshold,
                default_confidence,
            }) => Some(per_source(
                &entries,
                precision_threshold,
                f1_ciou_threshold,
                default_confidence,
            )),
            _ => None,
        },
    };
    (out != EvaluatorAggregates::default()).then_some(out)
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}", 100.0 * v)
    } else {
        "NaN".into()
    }
}

fn table(head: &[String], rows: &[Vec<String>]) -> String {
    let mut out = format!(
        "| {} |\n|{}|\n",
        head.join(" | "),
        vec!["---"; head.len()].join("|")
    );
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

/// Markdown tables (in percent) of the report's evaluator-specific aggregates; empty when none.
pub fn markdown_tables(report: &ScoreReport) -> String {
    let Some(e) = &report.aggregates.evaluator else {
        return String::new();
    };
    let name = &report.protocol.name;
    let mut out = String::new();
    let mut scalars: Vec<(String, f64)> = Vec::new();
    if let Some(m) = &e.mean_iou {
        scalars.push((format!("IoU@{} (mean)", m.threshold), m.value));
    }
    if let Some(nsa) = e.nsa {
        scalars.push(("NSA".into(), nsa));
    }
    if !scalars.is_empty() {
        let mut head = vec!["protocol".to_string()];
        let mut row = vec![name.clone()];
        for (h, v) in scalars {
            head.push(h);
            row.push(pct(v));
        }
        out.push_str(&table(&head, &[row]));
    }
    if let Some(stats) = &e.detection {
        let head = [
            "protocol",
            "subset",
            "cIoU ≥",
            "samples",
            "Precision",
            "AP",
            "max-F1",
            "AUC",
        ]
        .map(String::from);
        let rows: Vec<Vec<String>> = stats
            .iter()
            .map(|s| {
                let subset = match s.subset {
                    Subset::All => "all",
                    Subset::Visible => "visible",
                };
                vec![
                    name.clone(),
                    subset.into(),
                    s.ciou_threshold.to_string(),
                    s.samples.to_string(),
                    pct(s.precision),
                    pct(s.ap),
                    pct(s.max_f1),
                    pct(s.auc),
                ]
            })
            .collect();
        out.push_str(&table(&head, &rows));
    }
    if let Some(ps) = &e.per_source {
        let head = vec![
            "protocol".to_string(),
            "source".into(),
            "entries".into(),
            format!("Precision (cIoU > {})", ps.precision_threshold),
            "PIAP".into(),
            format!("F1 (cIoU ≥ {})", ps.f1_ciou_threshold),
        ];
        let mut rows: Vec<Vec<String>> = ps
            .sources
            .iter()
            .map(|s| {
                vec![
                    name.clone(),
                    s.source.to_string(),
                    s.entries.to_string(),
                    pct(s.precision),
                    pct(s.piap),
                    pct(s.f1),
                ]
            })
            .collect();
        rows.push(vec![
            name.clone(),
            "mean".into(),
            ps.sources
                .iter()
                .map(|s| s.entries)
                .sum::<usize>()
                .to_string(),
            pct(ps.precision),
            pct(ps.piap),
            pct(ps.f1),
        ]);
        out.push_str(&table(&head, &rows));
    }
    out
}
