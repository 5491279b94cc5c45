//! `bench/gpu.sh --cpu`: the one-command hardware benchmark in its small CPU form, so the script keeps working
//! with the binary it ships with (synth, label captions, embed, train, cost, the PyTorch reference, the table).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::assert_ok;

/// The oassl and PyTorch cells of the table row whose first cell starts with `name`.
fn cells<'a>(table: &'a str, name: &str) -> (&'a str, &'a str) {
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("| {name}")))
        .unwrap_or_else(|| panic!("no row {name:?} in\n{table}"));
    let cols: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
    assert_eq!(cols.len(), 3, "{line}");
    (cols[1], cols[2])
}

fn positive(cell: &str, what: &str) -> f64 {
    let v: f64 = cell
        .parse()
        .unwrap_or_else(|_| panic!("{what}: {cell:?} is not a number"));
    assert!(v.is_finite() && v > 0.0, "{what}: {v}");
    v
}

/// The MiniLM folder `make setup` unpacks.
fn minilm(root: &Path) -> PathBuf {
    let dir = root.join("data/models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "run `make setup` first: {} is missing",
        dir.display()
    );
    dir
}

#[test]
fn cpu_form_prints_every_row_with_numbers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let minilm = minilm(root);
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new("bash")
        .arg(root.join("bench/gpu.sh"))
        .arg("--cpu")
        .env("OASSL_BIN", env!("CARGO_BIN_EXE_oassl"))
        .env("MINILM_DIR", &minilm)
        .env("GPU_BENCH_OUT", out_dir.path())
        .output()
        .expect("running bench/gpu.sh");
    assert_ok(&out);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        table.contains("| measurement (cpu, batch 4, 64 px"),
        "{table}"
    );
    for method in ["lvs", "noprior", "oassl"] {
        let with_loader = format!("train {method} fp32: samples/s, `oassl train`");
        positive(cells(&table, &with_loader).0, &with_loader);
        let phases = format!("train {method} fp32: ms per step, `oassl train`");
        let times: Vec<f64> = cells(&table, &phases)
            .0
            .split(" / ")
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{phases}: {v:?} in\n{table}"))
            })
            .collect();
        assert_eq!(times.len(), 4, "{phases}: {times:?}");
        assert!(
            times.iter().all(|t| t.is_finite() && *t >= 0.0),
            "{times:?}"
        );
        assert!(times[1] > 0.0 && times[2] > 0.0, "{phases}: {times:?}");
        let step = format!("train {method} fp32: samples/s, step only (");
        let (ours, reference) = cells(&table, &step);
        positive(ours, &step);
        let memory = format!("train {method} fp32: peak memory (GiB)");
        positive(cells(&table, &memory).0, &memory);
        if method != "lvs" {
            let cut = format!("train {method} fp32: samples whose IOI the budget cut short (%)");
            let share: f64 = cells(&table, &cut)
                .0
                .parse()
                .unwrap_or_else(|_| panic!("{cut}: not a number in\n{table}"));
            assert!((0.0..=100.0).contains(&share), "{cut}: {share}");
        }
        // The reference implements the lvs objective only.
        if method == "lvs" {
            positive(reference, "PyTorch lvs step");
        } else {
            assert_eq!(reference, "—", "{table}");
        }
    }
    let exact = "train noprior fp32: samples/s, step only, exact IOI (no iteration budget)";
    positive(cells(&table, exact).0, exact);
    let nchw = "train lvs fp32: samples/s, step only, default layout";
    let (ours, reference) = cells(&table, nchw);
    positive(ours, nchw);
    positive(reference, nchw);
    for row in [
        "inference batch 8: samples/s",
        "inference batch 1: latency (ms)",
    ] {
        let (ours, reference) = cells(&table, row);
        positive(ours, row);
        positive(reference, row);
    }
    // fp32 only on CPU: no fp16 rows.
    assert!(!table.contains("fp16"), "{table}");
}

/// `bench/gpu_host.sh` on a pack laid out as `bench/gpu_pack.sh` makes it: the gzipped binary (here a gzipped
/// launcher of the test binary; packing a release build is too slow for the suite) and MiniLM converted to f16
/// by `bench/minilm_f16.py`. The runner unpacks, runs the CPU form and gathers table, log, results and commit.
#[test]
fn host_runner_unpacks_a_pack_and_gathers_the_results() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let minilm = minilm(root);
    let dir = tempfile::tempdir().expect("temp dir");
    let pack = dir.path().join("pack");
    let packed_minilm = pack.join("minilm");
    std::fs::create_dir_all(&packed_minilm).unwrap();
    let launcher = format!("#!/bin/sh\nexec '{}' \"$@\"\n", env!("CARGO_BIN_EXE_oassl"));
    std::fs::write(pack.join("oassl"), launcher).unwrap();
    assert_ok(
        &Command::new("gzip")
            .arg(pack.join("oassl"))
            .output()
            .expect("gzip"),
    );
    for entry in std::fs::read_dir(&minilm).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        if path.is_dir() {
            let sub = packed_minilm.join(&name);
            std::fs::create_dir_all(&sub).unwrap();
            for file in std::fs::read_dir(&path).unwrap() {
                let file = file.unwrap().path();
                std::fs::copy(&file, sub.join(file.file_name().unwrap())).unwrap();
            }
        } else if name != "model.safetensors" {
            std::fs::copy(&path, packed_minilm.join(&name)).unwrap();
        }
    }
    assert_ok(
        &Command::new("python3")
            .arg(root.join("bench/minilm_f16.py"))
            .arg(minilm.join("model.safetensors"))
            .arg(packed_minilm.join("model.safetensors"))
            .output()
            .expect("running bench/minilm_f16.py"),
    );
    let f32_size = std::fs::metadata(minilm.join("model.safetensors"))
        .unwrap()
        .len();
    let f16_size = std::fs::metadata(packed_minilm.join("model.safetensors"))
        .unwrap()
        .len();
    assert!(f16_size * 10 < f32_size * 6, "{f16_size} vs {f32_size}");
    std::fs::write(pack.join("commit"), "abc1234\n").unwrap();

    let out = dir.path().join("out");
    let run = Command::new("bash")
        .arg(root.join("bench/gpu_host.sh"))
        .arg(&pack)
        .arg(&out)
        .arg("600")
        .env("GPU_HOST_ARGS", "--cpu")
        .output()
        .expect("running bench/gpu_host.sh");
    assert_ok(&run);
    let table = std::fs::read_to_string(out.join("gpu.md")).expect("gpu.md gathered");
    let phases = "train lvs fp32: samples/s, step only";
    positive(cells(&table, phases).0, phases);
    for name in ["gpu.log", "results.tgz"] {
        let len = std::fs::metadata(out.join(name)).map_or(0, |m| m.len());
        assert!(len > 0, "{name} missing or empty in {}", out.display());
    }
    assert_eq!(
        std::fs::read_to_string(out.join("commit")).unwrap(),
        "abc1234\n"
    );
}
