//! The score report: per-sample values, aggregates as the evaluator logs them, and a Markdown row.

use crate::evaluator_aggregates::EvaluatorAggregates;
use crate::metrics::auc::{auc21, success_rate, Comparison};
use crate::multi_source::MultiSourceScoring;
use crate::protocol::Protocol;
use crate::scoring::SampleScore;
use crate::summation::numpy_mean;
use serde::{Deserialize, Serialize};

/// `cIoU@t`: the fraction of entries whose cIoU passes `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuccessRate {
    pub threshold: f64,
    pub comparison: Comparison,
    pub value: f64,
}

/// Aggregates over all entries of the counted samples (NaN-free unless a cIoU was 0/0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregates {
    /// Annotated samples.
    pub samples: usize,
    /// Samples contributing entries (NoPrior skips `K = 0`).
    pub counted_samples: usize,
    /// Samples scored as failures because their map was missing.
    pub missing_maps: usize,
    /// cIoU entries (one per source / slot / sample).
    pub entries: usize,
    pub success: Vec<SuccessRate>,
    /// 21-point AUC of the success curve.
    pub auc: f64,
    /// Mean cIoU (EZ-VSL "Avg-cIoU"; T-VSL's printed "CIoU@0.3").
    pub mean_ciou: f64,
    /// Mean entry AP: AP for single-source protocols, CAP for greedy ones.
    pub mean_ap: Option<f64>,
    /// NoPrior PIAP (mean over scored samples).
    pub piap: Option<f64>,
    /// NoPrior `true`: fraction of samples with `K` equal to the slot count.
    pub count_accuracy: Option<f64>,
    /// AP entries T-VSL drops silently (non-binary GT).
    pub ap_dropped: usize,
    /// What only the protocol's own evaluator reports (T-VSL IoU, DSOL NSA, SLAVC / AVGN
    /// confidence metrics); `None` for the other protocols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluator: Option<EvaluatorAggregates>,
}

/// Per-sample scores and their aggregates under one multi-source scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredSamples {
    pub samples: Vec<SampleScore>,
    pub aggregates: Aggregates,
}

/// Output of `score_maps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreReport {
    pub protocol: Protocol,
    pub annotation_format: String,
    /// Map ids without an annotation (ignored).
    pub unannotated_maps: Vec<String>,
    /// The multi-source scoring of `samples` and `aggregates`: source-wise unless only frame-wise
    /// was asked for; `None` under a single-source protocol.
    #[serde(default)]
    pub scoring: Option<MultiSourceScoring>,
    pub samples: Vec<SampleScore>,
    pub aggregates: Aggregates,
    /// The frame-wise scoring beside the source-wise one above, when both were asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_wise: Option<ScoredSamples>,
}

impl ScoreReport {
    /// The samples and aggregates of one multi-source scoring, when it was run.
    pub fn scored(&self, scoring: MultiSourceScoring) -> Option<(&[SampleScore], &Aggregates)> {
        if self.scoring == Some(scoring) {
            return Some((self.samples.as_slice(), &self.aggregates));
        }
        match (scoring, &self.frame_wise) {
            (MultiSourceScoring::FrameWise, Some(f)) => Some((f.samples.as_slice(), &f.aggregates)),
            _ => None,
        }
    }

    /// Every scoring of the report with its aggregates, main one first (`None`: single-source).
    pub fn all_aggregates(&self) -> Vec<(Option<MultiSourceScoring>, &Aggregates)> {
        let mut out = vec![(self.scoring, &self.aggregates)];
        if let Some(f) = &self.frame_wise {
            out.push((Some(MultiSourceScoring::FrameWise), &f.aggregates));
        }
        out
    }
}

/// Aggregates as NoPrior's `on_test_epoch_end` / EZ-VSL `finalize_*` compute them.
pub fn aggregate(samples: &[SampleScore], p: &Protocol) -> Aggregates {
    let counted: Vec<&SampleScore> = samples.iter().filter(|s| s.counted).collect();
    let cious: Vec<f64> = counted
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.ciou))
        .collect();
    let aps: Vec<f64> = counted
        .iter()
        .flat_map(|s| s.entries.iter().filter_map(|e| e.ap))
        .collect();
    let piaps: Vec<f64> = samples.iter().filter_map(|s| s.piap).collect();
    let counts: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.count_correct.map(|c| if c { 1.0 } else { 0.0 }))
        .collect();
    Aggregates {
        samples: samples.len(),
        counted_samples: counted.len(),
        missing_maps: samples.iter().filter(|s| s.missing_map).count(),
        entries: cious.len(),
        success: p
            .success_thresholds
            .iter()
            .map(|&t| SuccessRate {
                threshold: t,
                comparison: p.comparison,
                value: success_rate(&cious, t, p.comparison),
            })
            .collect(),
        auc: auc21(&cious),
        mean_ciou: numpy_mean(&cious),
        mean_ap: p.pixel_ap.map(|_| numpy_mean(&aps)),
        piap: p.piap.then(|| numpy_mean(&piaps)),
        count_accuracy: (!counts.is_empty()).then(|| numpy_mean(&counts)),
        ap_dropped: samples.iter().map(|s| s.ap_dropped).sum(),
        evaluator: crate::evaluator_aggregates::aggregate(samples, p),
    }
}

fn pct(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{:.2}", 100.0 * x),
        Some(_) => "NaN".into(),
        None => "–".into(),
    }
}

/// A Markdown table of the aggregates, in percent: one row per scoring (source-wise, then
/// frame-wise, when both were run), the scoring named in the last column.
pub fn markdown_table(report: &ScoreReport) -> String {
    let mut head = vec![
        "protocol".to_string(),
        "annotations".into(),
        "samples".into(),
        "entries".into(),
    ];
    for s in &report.aggregates.success {
        let op = match s.comparison {
            Comparison::Ge => "",
            Comparison::Gt => ">",
        };
        head.push(format!("cIoU@{op}{}", s.threshold));
    }
    for name in ["AUC", "mean cIoU", "AP", "PIAP", "count acc.", "scoring"] {
        head.push(name.into());
    }
    let sep: Vec<String> = head.iter().map(|_| "---".to_string()).collect();
    let mut out = format!("| {} |\n|{}|\n", head.join(" | "), sep.join("|"));
    for (scoring, a) in report.all_aggregates() {
        let mut row = vec![
            report.protocol.name.clone(),
            report.annotation_format.clone(),
            a.samples.to_string(),
            a.entries.to_string(),
        ];
        row.extend(a.success.iter().map(|s| pct(Some(s.value))));
        for v in [
            Some(a.auc),
            Some(a.mean_ciou),
            a.mean_ap,
            a.piap,
            a.count_accuracy,
        ] {
            row.push(pct(v));
        }
        row.push(scoring.map_or("–", MultiSourceScoring::name).to_string());
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}
