//! `eval/results.md`: one row per split and map source (the model and the two reference maps), in percent,
//! followed by the same three rows for each slice of the split (`test_duet / distractor`).
//!
//! Single-source splits are read as IoU@0.5 / AUC / AP, multi-source splits as CAP / CIoU@0.3 / AUC (docs/method.md
//! §6.4-6.5); the AP column is the protocol's per-entry AP, i.e. CAP under greedy matching.

use oassl_eval::Aggregates;

use super::{EvalReport, SplitReport};

fn pct(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{:.2}", 100.0 * x),
        Some(_) => "NaN".into(),
        None => "–".into(),
    }
}

fn success(a: &Aggregates, t: f64) -> Option<f64> {
    a.success
        .iter()
        .find(|s| (s.threshold - t).abs() < 1e-9)
        .map(|s| s.value)
}

/// The table as Markdown.
pub fn markdown(report: &EvalReport) -> String {
    let mut out = format!(
        "Protocol `{}`, model `{}` ({}, step {}).\n\n",
        report.protocol,
        report.model.display(),
        report.meta.method,
        report.meta.step
    );
    out.push_str("| split | maps | samples | cIoU@0.5 | cIoU@0.3 | AUC | AP / CAP | mean cIoU | count acc. |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    out.push_str(&rows(&report.splits));
    out
}

/// The table's rows: per split, its three rows, then three per slice.
pub(super) fn rows(splits: &[SplitReport]) -> String {
    let mut out = String::new();
    for part in splits.iter().flat_map(|s| s.parts()) {
        let label = part.label();
        let rows: [(&str, &Aggregates); 3] = [
            ("model", part.model),
            ("random map", part.random),
            ("centre prior", part.centre_prior),
        ];
        for (name, a) in rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                label,
                name,
                a.samples,
                pct(success(a, 0.5)),
                pct(success(a, 0.3)),
                pct(Some(a.auc)),
                pct(a.mean_ap),
                pct(Some(a.mean_ciou)),
                pct(a.count_accuracy),
            ));
        }
    }
    out
}
