//! `oassl eval`: the trained model on the test splits, with random and centre-prior reference rows.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct EvalArgs {}

pub fn run(config: &Path, _args: EvalArgs) -> Result<ExitCode> {
    let (loaded, layout) = super::load(config)?;
    let s = oassl_evaluate::run::run(&loaded.eval(), &layout)?;
    print!("{}", s.markdown);
    println!(
        "eval: {:.1} images/s on {}; metrics {}, table {}, gallery {}, page {}",
        s.report.images_per_s,
        s.report.device,
        s.metrics.display(),
        s.table.display(),
        s.gallery.display(),
        s.page.display()
    );
    Ok(ExitCode::SUCCESS)
}
