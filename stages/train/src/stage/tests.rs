//! Stage-three runs on a tiny AVS-Synth set, on CPU: kill-and-resume reaches the same final step, bad inputs
//! name the sample.

use oassl_pipeline::config::TrainConfig;
use oassl_pipeline::manifest::Manifest;
use oassl_pipeline::tables::write_sample_texts;

use super::{run, TrainOptions};
use crate::tiny_set::{tiny_data, tiny_train};

#[test]
fn killed_run_resumes_to_the_same_final_step() {
    let dir = tempfile::tempdir().unwrap();
    let layout = tiny_data(dir.path(), 4, 4);
    let cfg = TrainConfig {
        epochs: 3,
        ..tiny_train()
    };
    let stopped = TrainOptions {
        stop_after: Some(5),
        ..TrainOptions::default()
    };
    let s = run(&cfg, &layout, &stopped).unwrap();
    assert!(s.interrupted && s.step == 5, "{s:?}");
    // The last checkpoint is at step 4; step 5 is redone.
    let resumed = run(
        &cfg,
        &layout,
        &TrainOptions {
            resume: true,
            ..TrainOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        (resumed.start_step, resumed.step, resumed.total_steps),
        (4, 6, 6)
    );
    assert!(resumed.final_loss.is_finite() && !resumed.interrupted);
    let rows = super::step_log::read_rows(&layout.stage_dir("train").join("steps.csv")).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.step).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );
    // Interrupted again: a plain rerun refuses, names both ways on, and touches nothing.
    let forced = TrainOptions {
        stop_after: Some(2),
        restart: true,
        ..TrainOptions::default()
    };
    assert!(run(&cfg, &layout, &forced).unwrap().interrupted);
    let train_dir = layout.stage_dir("train");
    let before = folder_bytes(&train_dir);
    for opts in [
        TrainOptions::default(),
        TrainOptions {
            force: true,
            ..TrainOptions::default()
        },
    ] {
        let err = format!("{:#}", run(&cfg, &layout, &opts).unwrap_err());
        assert!(
            err.contains("--resume") && err.contains("--restart") && err.contains("step 2 of 6"),
            "{err}"
        );
    }
    assert_eq!(
        folder_bytes(&train_dir),
        before,
        "a refused run changed files"
    );
    // Changed settings cannot continue it; --restart discards it and starts over.
    let other = TrainConfig {
        learning_rate: 1e-3,
        ..cfg
    };
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    let err = run(&other, &layout, &resume).unwrap_err();
    assert!(format!("{err:#}").contains("cannot resume"), "{err:#}");
    assert_eq!(
        folder_bytes(&train_dir),
        before,
        "a refused resume changed files"
    );
    let restarted = TrainOptions {
        restart: true,
        ..TrainOptions::default()
    };
    let s = run(&other, &layout, &restarted).unwrap();
    assert_eq!(
        (s.start_step, s.step, s.reason.as_str()),
        (0, 6, "restarted")
    );
}

/// A run that dies while writing its final checkpoint, or right after it, still leaves a full step log, and
/// resuming gives the same weights, description and losses as a resume that met no failure. Both resume from
/// one saved folder, so the comparison does not rest on the seeded initialisation, which tests drawing from
/// libtorch's process-wide generator on other threads can move (that a resume equals a run never interrupted
/// is the soak's check, one process per run).
#[test]
fn death_at_the_final_checkpoint_keeps_the_step_log_and_resumes_identically() {
    let dir = tempfile::tempdir().unwrap();
    let layout = tiny_data(dir.path(), 4, 4);
    let cfg = TrainConfig {
        epochs: 3,
        ..tiny_train()
    };
    let train_dir = layout.stage_dir("train");
    let outputs = || {
        let losses: Vec<(usize, f64)> = super::step_log::read_rows(&train_dir.join("steps.csv"))
            .unwrap()
            .iter()
            .map(|r| (r.step, r.total))
            .collect();
        let file = |name: &str| std::fs::read(train_dir.join(name)).unwrap();
        (losses, file("model.json"), file("model.safetensors"))
    };
    let interrupted = TrainOptions {
        stop_after: Some(5),
        ..TrainOptions::default()
    };
    assert!(run(&cfg, &layout, &interrupted).unwrap().interrupted);
    let saved = folder_bytes(&train_dir);
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    run(&cfg, &layout, &resume).unwrap();
    let reference = outputs();
    assert_eq!(reference.0.len(), 6);

    std::fs::remove_dir_all(&train_dir).unwrap();
    for (path, bytes) in &saved {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    // The final checkpoint cannot be written: a folder sits where its weights go.
    let blocker = train_dir.join("checkpoints/step-0000006.model.safetensors");
    std::fs::create_dir_all(blocker.join("in-the-way")).unwrap();
    assert!(run(&cfg, &layout, &resume).is_err());
    let logged: Vec<usize> = super::step_log::read_rows(&train_dir.join("steps.csv"))
        .unwrap()
        .iter()
        .map(|r| r.step)
        .collect();
    assert_eq!(
        logged,
        (1..=6).collect::<Vec<_>>(),
        "rows lost with the checkpoint"
    );
    std::fs::remove_dir_all(&blocker).unwrap();
    let s = run(&cfg, &layout, &resume).unwrap();
    assert_eq!((s.start_step, s.step), (4, 6));
    assert!(
        outputs() == reference,
        "resumed past a failed checkpoint, outputs differ"
    );

    // Killed after the final checkpoint, before the weights: the rerun trains no step and writes the same files.
    for name in ["model.json", "model.safetensors", "stage.lock.json"] {
        std::fs::remove_file(train_dir.join(name)).unwrap();
    }
    let s = run(&cfg, &layout, &resume).unwrap();
    assert_eq!((s.start_step, s.step), (6, 6));
    assert!(
        outputs() == reference,
        "resumed at the last step, outputs differ"
    );
}

/// Every file under `dir` with its bytes, sorted by path.
fn folder_bytes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn bad_inputs_name_the_sample_and_file_or_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let layout = tiny_data(dir.path(), 4, 2);
    let manifest = Manifest::read(&layout.manifest()).unwrap();
    let broken = &manifest.rows[1].id;
    std::fs::write(layout.frame(broken), b"not a jpeg").unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        ..tiny_train()
    };
    let err = format!(
        "{:#}",
        run(&cfg, &layout, &TrainOptions::default()).unwrap_err()
    );
    assert!(
        err.contains(broken.as_str()) && err.contains(".jpg"),
        "{err}"
    );

    let skip = TrainConfig {
        skip_bad_samples: true,
        ..cfg.clone()
    };
    let s = run(&skip, &layout, &TrainOptions::default()).unwrap();
    assert_eq!((s.samples, s.skipped), (5, 1));

    // A sample without text vectors, and one with K different from its labels.
    let texts_path = layout.stage_dir("embed").join("sample_text.parquet");
    let mut texts = oassl_pipeline::tables::read_sample_texts(&texts_path).unwrap();
    let duet = texts.iter().position(|t| t.labels.len() == 2).unwrap();
    texts[duet].foreground.truncate(1);
    texts[duet].labels.truncate(1);
    let dropped = texts.remove(0);
    write_sample_texts(&texts_path, &texts).unwrap();
    let err = format!(
        "{:#}",
        run(&cfg, &layout, &TrainOptions::default()).unwrap_err()
    );
    assert!(
        err.contains(dropped.sample_id.as_str()) && err.contains("sample_text.parquet"),
        "{err}"
    );
    // A duplicated row is refused naming the sample, whatever the two rows hold.
    let mut doubled = texts.clone();
    doubled.push(texts[1].clone());
    write_sample_texts(&texts_path, &doubled).unwrap();
    let err = format!(
        "{:#}",
        run(&cfg, &layout, &TrainOptions::default()).unwrap_err()
    );
    assert!(
        err.contains(texts[1].sample_id.as_str()) && err.contains("more than one row"),
        "{err}"
    );
    std::fs::remove_file(layout.audio(&dropped.sample_id)).unwrap();
    texts.insert(0, dropped.clone());
    write_sample_texts(&texts_path, &texts).unwrap();
    let err = format!(
        "{:#}",
        run(&cfg, &layout, &TrainOptions::default()).unwrap_err()
    );
    assert!(
        err.contains(dropped.sample_id.as_str()) && err.contains(".wav"),
        "{err}"
    );
}

/// Files that pass a header check but fail later (a cut JPEG or WAV, a WAV at another rate) are found before
/// the first step: named with their sample, or left out and counted with `skip_bad_samples`.
#[test]
fn truncated_media_and_another_rate_are_found_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let layout = tiny_data(dir.path(), 4, 3);
    let manifest = Manifest::read(&layout.manifest()).unwrap();
    let (cut_jpeg, cut_wav, other_rate) = (
        &manifest.rows[0].id,
        &manifest.rows[1].id,
        &manifest.rows[2].id,
    );
    let cfg = TrainConfig {
        epochs: 1,
        ..tiny_train()
    };
    let frame = std::fs::read(layout.frame(cut_jpeg)).unwrap();
    std::fs::write(layout.frame(cut_jpeg), &frame[..frame.len() / 3]).unwrap();
    let err = format!(
        "{:#}",
        run(&cfg, &layout, &TrainOptions::default()).unwrap_err()
    );
    assert!(
        err.contains(cut_jpeg.as_str()) && err.contains(".jpg"),
        "{err}"
    );
    std::fs::write(layout.frame(cut_jpeg), &frame).unwrap();

    let wav = std::fs::read(layout.audio(cut_wav)).unwrap();
    std::fs::write(layout.audio(cut_wav), &wav[..wav.len() / 2]).unwrap();
    let err = format!(
        "{:#}",
        run(&cfg, &layout, &TrainOptions::default()).unwrap_err()
    );
    assert!(
        err.contains(cut_wav.as_str()) && err.contains(".wav"),
        "{err}"
    );

    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(layout.audio(other_rate), spec).unwrap();
    for i in 0..48_000 {
        writer.write_sample(((i % 100) * 100) as i16).unwrap();
    }
    writer.finalize().unwrap();
    std::fs::write(layout.audio(cut_wav), &wav).unwrap();
    let err = format!(
        "{:#}",
        run(&cfg, &layout, &TrainOptions::default()).unwrap_err()
    );
    assert!(
        err.contains(other_rate.as_str()) && err.contains("16000 Hz"),
        "{err}"
    );

    std::fs::write(layout.audio(cut_wav), &wav[..wav.len() / 2]).unwrap();
    let skip = TrainConfig {
        skip_bad_samples: true,
        ..cfg
    };
    let s = run(&skip, &layout, &TrainOptions::default()).unwrap();
    assert_eq!(
        (s.samples, s.skipped, s.step),
        (5, 2, s.total_steps),
        "{s:?}"
    );
}

/// `autocast = true` on CPU trains with bf16 trunks: the run finishes with finite losses at every step and
/// writes weights other than an fp32 run's.
#[test]
fn cpu_autocast_trains_in_bf16() {
    let dir = tempfile::tempdir().unwrap();
    let layout = tiny_data(dir.path(), 4, 2);
    let bf16 = TrainConfig {
        autocast: true,
        ..tiny_train()
    };
    let s = run(&bf16, &layout, &TrainOptions::default()).unwrap();
    assert!(!s.interrupted && s.step == s.total_steps, "{s:?}");
    let rows = super::step_log::read_rows(&layout.stage_dir("train").join("steps.csv")).unwrap();
    assert_eq!(rows.len(), s.total_steps);
    assert!(
        rows.iter().all(|r| r.total.is_finite() && r.applied),
        "{rows:?}"
    );
    let model = layout.stage_dir("train").join("model.safetensors");
    let bf16_weights = std::fs::read(&model).unwrap();
    let fp32 = TrainConfig {
        autocast: false,
        ..tiny_train()
    };
    run(&fp32, &layout, &TrainOptions::default()).unwrap();
    assert!(
        std::fs::read(&model).unwrap() != bf16_weights,
        "bf16 and fp32 runs wrote the same weights"
    );
}

/// `compose = 2` trains on pairs of single-source clips (the run counts pairs as samples) and refuses a
/// training set with multi-source clips, naming one; the composition enters the fingerprint.
#[test]
fn composed_pairs_train_and_multi_source_clips_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = tiny_data(dir.path(), 9, 2);
    let pairs = TrainConfig {
        splits: vec!["train_single".into()],
        compose: 2,
        batch_size: 2,
        ..tiny_train()
    };
    let s = run(&pairs, &layout, &TrainOptions::default()).unwrap();
    // 9 clips → ⌊9 / (2·2)⌋ = 2 steps per epoch, 2 epochs.
    assert_eq!((s.samples, s.total_steps, s.step), (9, 4, 4), "{s:?}");
    let rows = super::step_log::read_rows(&layout.stage_dir("train").join("steps.csv")).unwrap();
    assert!(rows.iter().all(|r| r.total.is_finite()), "{rows:?}");
    let single = TrainConfig {
        compose: 1,
        ..pairs.clone()
    };
    let again = run(&single, &layout, &TrainOptions::default()).unwrap();
    assert!(!again.up_to_date, "compose 1 after compose 2 must retrain");

    let with_duets = TrainConfig {
        splits: vec!["train_single".into(), "train_duet".into()],
        ..pairs
    };
    let err = format!(
        "{:#}",
        run(&with_duets, &layout, &TrainOptions::default()).unwrap_err()
    );
    assert!(
        err.contains("compose = 2") && err.contains("train-duet"),
        "{err}"
    );
}

/// NoPrior with an IOI iteration budget trains to the end and logs, per step, the samples the budget stopped
/// early; without a budget, and with a budget of N + 1 (never binding), that count is 0 on every step. That an
/// ample budget gives the unbounded bank, labels and L_OSC is `an_ample_iteration_budget_gives_the_unbounded_result`
/// in `model/ioi.rs`: comparing two whole runs here would rest on the seeded initialisation, which tests drawing
/// from libtorch's process-wide generator on other threads can move.
#[test]
fn ioi_iteration_budget_trains_and_logs_the_samples_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let layout = tiny_data(dir.path(), 4, 4);
    let steps = layout.stage_dir("train").join("steps.csv");
    let noprior = |budget: Option<usize>| {
        let mut cfg = TrainConfig {
            method: oassl_pipeline::config::Method::NoPrior,
            ..tiny_train()
        };
        cfg.loss.ioi_iteration_budget = budget;
        cfg
    };
    let forced = TrainOptions {
        force: true,
        ..TrainOptions::default()
    };
    let cut_short = || -> Vec<usize> {
        super::step_log::read_rows(&steps)
            .unwrap()
            .iter()
            .map(|r| {
                assert!(r.total.is_finite(), "{r:?}");
                r.ioi_cut_short
            })
            .collect()
    };

    run(&noprior(None), &layout, &forced).unwrap();
    assert!(cut_short().iter().all(|&c| c == 0));
    let rows = super::step_log::read_rows(&steps).unwrap();
    assert!(
        rows.iter().any(|r| r.osc != 0.0),
        "L_OSC never contributed: {rows:?}"
    );

    run(&noprior(Some(1)), &layout, &forced).unwrap();
    let counts = cut_short();
    assert!(counts.iter().any(|&c| c > 0), "{counts:?}");
    assert!(
        counts.iter().all(|&c| c <= tiny_train().batch_size),
        "{counts:?}"
    );

    // The tiny set's maps have at most (image_size / stride)² positions.
    let positions = (tiny_train().image_size as usize / 16).pow(2);
    run(&noprior(Some(positions + 1)), &layout, &forced).unwrap();
    let ample = cut_short();
    assert_eq!(ample.len(), rows.len());
    assert!(ample.iter().all(|&c| c == 0), "{ample:?}");
}
