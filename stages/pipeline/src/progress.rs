//! The one progress-bar style of every stage: label, bar, count, rate, elapsed and ETA, then the stage's message
//! (a loss, a file); drawn on a terminal, hidden otherwise so logs and CI output stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps labelled `what`; hidden when stderr is not a terminal or `len` is 0.
pub fn bar(what: &str, len: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if len == 0 || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    let template = format!(
        "{what:>10} {{bar:30}} {{pos}}/{{len}} {{per_sec}} [{{elapsed_precise}} < {{eta_precise}}] {{msg}}"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
