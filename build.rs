//! Link flags the final binary needs for libtorch.
//!
//! `--as-needed` would drop `libtorch_cuda.so` (nothing references its symbols), and CUDA would then
//! report "unavailable"; the rpath lets the binary find libtorch without `LD_LIBRARY_PATH`.
//! Library crates cannot pass link args to downstream binaries, so this lives in the binary crate.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "linux" {
        return;
    }
    let lib_dir = std::env::var("DEP_TCH_LIBTORCH_LIB").ok();
    if let Some(dir) = &lib_dir {
        println!("cargo:rustc-link-arg=-Wl,-rpath={dir}");
    }
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
    // Name libtorch_cuda directly when the libtorch in use has it (CUDA builds), so it is a NEEDED entry of
    // the binary itself rather than only of libtorch.so.
    let has_cuda = lib_dir
        .as_deref()
        .map(|d| std::path::Path::new(d).join("libtorch_cuda.so").exists())
        .unwrap_or(false);
    if has_cuda {
        println!("cargo:rustc-link-arg=-ltorch_cuda");
    }
}
