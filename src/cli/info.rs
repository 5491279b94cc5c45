//! `oassl info`: what this binary runs on.

use std::process::ExitCode;

use anyhow::Result;

pub fn run() -> Result<ExitCode> {
    println!("oassl {}", env!("CARGO_PKG_VERSION"));
    println!("ffmpeg feature: {}", cfg!(feature = "ffmpeg"));
    println!("cuda available: {}", tch::Cuda::is_available());
    println!("cudnn available: {}", tch::Cuda::cudnn_is_available());
    println!("cuda devices: {}", tch::Cuda::device_count());
    Ok(ExitCode::SUCCESS)
}
