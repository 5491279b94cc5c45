//! `eval/results.md`: one row per split and map source (the model and the two reference maps), in percent,
//! followed by the same three rows for each slice of the split (`test_duet / distractor`).
//!
//! Single-source splits are read as IoU@0.5 / AUC / AP, multi-source splits as CAP / CIoU@0.3 / AUC (docs/method.md
//! §6.4-6.5); the AP column is the protocol's per-entry AP, i.e. CAP under greedy matching.
//!
//! Under a multi-source protocol the columns hold the scoring `[eval] multi_source` names first (source-wise
//! unless only frame-wise was asked for), and with both the frame-wise cIoU@0.5, cIoU@0.3, AUC, AP and mean cIoU
//! follow on the same row (one score per frame; the AP is the frame's, not CAP).

use oassl_eval::{Aggregates, MultiSourceScoring};

use crate::run::{EvalReport, SplitReport};

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
    let scoring = report.splits.first().and_then(|s| s.model.scoring);
    let frame_wise = with_frame_wise(&report.splits);
    match (scoring, frame_wise) {
        (None, _) => {}
        (Some(s), false) => out.push_str(&format!(
            "Multi-source scoring: {} ({}).\n\n",
            s.name(),
            meaning(s)
        )),
        (Some(s), true) => out.push_str(&format!(
            "Multi-source scoring: {} ({}), and frame-wise in the `frame-wise` columns ({}).\n\n",
            s.name(),
            meaning(s),
            meaning(MultiSourceScoring::FrameWise)
        )),
    }
    out.push_str("| split | maps | samples | cIoU@0.5 | cIoU@0.3 | AUC | AP / CAP | mean cIoU | count acc. |");
    let mut rule = "|---|---|---|---|---|---|---|---|---|".to_string();
    if frame_wise {
        out.push_str(
            " frame-wise cIoU@0.5 | frame-wise cIoU@0.3 | frame-wise AUC | frame-wise AP | frame-wise mean cIoU |",
        );
        rule.push_str("---|---|---|---|---|");
    }
    out.push_str(&format!("\n{rule}\n"));
    out.push_str(&rows(&report.splits));
    out
}

/// What a scoring scores, for the table's preamble.
fn meaning(s: MultiSourceScoring) -> &'static str {
    match s {
        MultiSourceScoring::SourceWise => "one score per sounding source, against its own box",
        MultiSourceScoring::FrameWise => {
            "one score per frame, its merged maps against the union of its sources"
        }
    }
}

/// Whether any split was also scored frame-wise (the table then has the frame-wise columns).
fn with_frame_wise(splits: &[SplitReport]) -> bool {
    splits.iter().any(|s| s.frame_wise.is_some())
}

fn cells(a: &Aggregates) -> [String; 5] {
    [
        pct(success(a, 0.5)),
        pct(success(a, 0.3)),
        pct(Some(a.auc)),
        pct(a.mean_ap),
        pct(Some(a.mean_ciou)),
    ]
}

/// The table's rows: per split, its three rows, then three per slice.
pub(super) fn rows(splits: &[SplitReport]) -> String {
    let frame_wise = with_frame_wise(splits);
    let mut out = String::new();
    for part in splits.iter().flat_map(|s| s.parts()) {
        let label = part.label();
        let fw = part.frame_wise;
        let rows: [(&str, &Aggregates, Option<&Aggregates>); 3] = [
            ("model", part.model, fw.map(|f| &f.model)),
            ("random map", part.random, fw.map(|f| &f.random)),
            (
                "centre prior",
                part.centre_prior,
                fw.map(|f| &f.centre_prior),
            ),
        ];
        for (name, a, f) in rows {
            let [c05, c03, auc, ap, mean] = cells(a);
            out.push_str(&format!(
                "| {label} | {name} | {} | {c05} | {c03} | {auc} | {ap} | {mean} | {} |",
                a.samples,
                pct(a.count_accuracy),
            ));
            if frame_wise {
                let f = f.map_or_else(
                    || {
                        [
                            "–".to_string(),
                            "–".into(),
                            "–".into(),
                            "–".into(),
                            "–".into(),
                        ]
                    },
                    cells,
                );
                out.push_str(&format!(" {} |", f.join(" | ")));
            }
            out.push('\n');
        }
    }
    out
}
