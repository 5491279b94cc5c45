//! `oassl train` / `oassl eval` through the binary: config refusal, missing inputs, and a tiny end-to-end run
//! (synth → label captions → text vectors → train → up to date → eval).

use crate::common::{assert_ok, Workspace};
use oassl_evaluate::gallery;
use oassl_train::stage::loss_curve;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn unknown_train_and_eval_keys_are_refused() {
    let ws = Workspace::with_config("[train.loss]\nlambda_3 = 0.1\n");
    let out = ws.oassl(&["train"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("lambda_3"), "{}", stderr(&out));
    let ws = Workspace::with_config("[eval]\nprotocol = \"nope\"\n");
    let out = ws.oassl(&["eval"]);
    assert!(stderr(&out).contains("[eval] protocol"), "{}", stderr(&out));
}

#[test]
fn missing_inputs_name_what_to_run() {
    let ws = Workspace::with_config("");
    let out = ws.oassl(&["train"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("make data"), "{}", stderr(&out));
    let out = ws.oassl(&["eval"]);
    assert!(stderr(&out).contains("make train"), "{}", stderr(&out));
}

/// `device = "cuda"` on a host where libtorch sees no CUDA device stops pretraining, training, evaluation and
/// `oassl cost` with an error naming the key, after their other inputs are in place; nothing runs on the CPU
/// instead. On a host with CUDA there is nothing to refuse, and the test says so and returns.
#[test]
fn cuda_requested_without_cuda_is_an_error_not_a_fallback() {
    let ws = Workspace::with_config(
        "[synth]\nwidth = 64\nheight = 64\ntrain_single = 4\ntrain_duet = 2\ntest_single = 2\ntest_duet = 2\n\
         pretrain = 32\n\
         [pretrain]\ndevice = \"cuda\"\nimage_size = 48\nbatch_size = 8\nsteps = 3\n\
         [train]\ndevice = \"cuda\"\nimage_size = 48\naudio_seconds = 0.5\nbatch_size = 3\nepochs = 1\n\
         visual_output_stride = 16\n\
         [eval]\ndevice = \"cuda\"\n",
    );
    let info = ws.oassl(&["info"]);
    assert_ok(&info);
    if !stdout(&info).contains("cuda available: false") {
        eprintln!("CUDA is available on this host: nothing to refuse");
        return;
    }
    assert_ok(&ws.oassl(&["synth", "--layout", "extracted"]));
    assert_ok(&ws.oassl(&["label-captions"]));
    stand_in_text_vectors(&ws);
    for (args, section) in [
        (&["pretrain"][..], "pretrain"),
        (&["train"][..], "train"),
        (
            &["cost", "--phases", "train:lvs", "--iterations", "1"][..],
            "train",
        ),
        (&["eval"][..], "eval"),
    ] {
        let out = ws.oassl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let want = format!("[{section}] device = \"cuda\" but CUDA is not available here");
        assert!(stderr(&out).contains(&want), "{args:?}: {}", stderr(&out));
    }
    for stage in ["pretrain", "train", "cost", "eval"] {
        assert!(!ws.data().join(stage).exists(), "{stage} wrote outputs");
    }
}

/// Stand-in text vectors (stage two is tested on its own): one seeded vector per label.
fn stand_in_text_vectors(ws: &Workspace) {
    oassl_train::tiny_set::write_stand_in_texts(&oassl_pipeline::Layout::new(ws.data()), 8);
}

/// Pretrain, train and evaluate a tiny set from scratch in a fresh workspace; returns the metrics of every split
/// and the trained weights. With `stop_after`, training stops after that step (as if killed), a plain rerun
/// must refuse, and `--resume` finishes it.
fn seeded_run(seed: u64, stop_after: Option<usize>) -> (serde_json::Value, Vec<u8>) {
    let ws = Workspace::with_config(&format!(
        "[synth]\nwidth = 64\nheight = 64\ntrain_single = 4\ntrain_duet = 2\ntest_single = 2\ntest_duet = 2\n\
         pretrain = 32\n\
         [pretrain]\ndevice = \"cpu\"\nimage_size = 48\nbatch_size = 8\nsteps = 3\n\
         [train]\ndevice = \"cpu\"\nseed = {seed}\nimage_size = 48\naudio_seconds = 0.5\nbatch_size = 3\n\
         epochs = 2\ncheckpoint_every = 2\nvisual_output_stride = 16\nfreeze_visual = true\n\
         visual_projection = true\n\
         visual_weights = \"data/pretrain/visual_resnet18.safetensors\"\n\
         [eval]\ndevice = \"cpu\"\ngallery_tile = 48\n"
    ));
    assert_ok(&ws.oassl(&["synth", "--layout", "extracted"]));
    assert_ok(&ws.oassl(&["label-captions"]));
    stand_in_text_vectors(&ws);
    assert_ok(&ws.oassl(&["pretrain"]));
    if let Some(step) = stop_after {
        assert_ok(&ws.oassl(&["train", "--stop-after", &step.to_string()]));
        let refused = ws.oassl(&["train"]);
        assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
        assert!(
            stderr(&refused).contains("--resume"),
            "{}",
            stderr(&refused)
        );
        let eval = ws.oassl(&["eval"]);
        assert!(stderr(&eval).contains("stage lock"), "{}", stderr(&eval));
        assert_ok(&ws.oassl(&["train", "--resume"]));
    } else {
        assert_ok(&ws.oassl(&["train"]));
    }
    assert_ok(&ws.oassl(&["eval"]));
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.data().join("eval/metrics.json")).unwrap())
            .unwrap();
    let weights = std::fs::read(ws.data().join("train/model.safetensors")).unwrap();
    (metrics["splits"].clone(), weights)
}

/// Two CPU runs of one seeded config (each stage in its own process, as libtorch's RNG is process-wide) give
/// identical metrics and bitwise-identical weights, also when one of them was interrupted after step 3 (its
/// last checkpoint is at step 2) and resumed; another seed gives another model.
#[test]
fn seeded_cpu_runs_give_identical_metrics_and_weights() {
    let (a, wa) = seeded_run(3, None);
    let (b, wb) = seeded_run(3, Some(3));
    assert_eq!(a, b);
    assert!(
        wa == wb,
        "an interrupted and resumed run trained other weights"
    );
    let (c, wc) = seeded_run(3, None);
    assert_eq!(a, c);
    assert!(wa == wc, "the weights of two runs of one seed differ");
    let (_, wd) = seeded_run(4, None);
    assert!(wa != wd, "another seed trained the same weights");
}

#[test]
fn tiny_run_trains_reports_up_to_date_and_evaluates() {
    let ws = Workspace::with_config(
        "[synth]\nwidth = 64\nheight = 64\ntrain_single = 3\ntrain_duet = 3\ntest_single = 2\ntest_duet = 2\n\
         [train]\ndevice = \"cpu\"\nimage_size = 64\naudio_seconds = 0.5\nbatch_size = 3\nepochs = 1\n\
         [eval]\ndevice = \"cpu\"\ngallery_tile = 64\n",
    );
    assert_ok(&ws.oassl(&["synth", "--layout", "extracted"]));
    assert_ok(&ws.oassl(&["label-captions"]));
    stand_in_text_vectors(&ws);

    let out = ws.oassl(&["train"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("steps 0..2 of 2"), "{}", stdout(&out));
    let again = ws.oassl(&["train"]);
    assert_ok(&again);
    assert!(stdout(&again).contains("up to date"), "{}", stdout(&again));

    let out = ws.oassl(&["eval"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("centre prior") && text.contains("random map"),
        "{text}"
    );
    for f in [
        "metrics.json",
        "results.md",
        "gallery.png",
        "maps.safetensors",
    ] {
        assert!(ws.data().join("eval").join(f).is_file(), "{f}");
    }
    // Every split reports its distractor slices (none unless it holds clips with and without a silent twin).
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.data().join("eval/metrics.json")).unwrap())
            .unwrap();
    for split in metrics["splits"].as_array().unwrap() {
        let slices = split["slices"].as_array().unwrap();
        assert!(slices.is_empty() || slices.len() == 2, "{split}");
        let parts: u64 = slices
            .iter()
            .map(|s| s["model"]["samples"].as_u64().unwrap())
            .sum();
        assert!(
            slices.is_empty() || parts == split["model"]["aggregates"]["samples"],
            "{split}"
        );
        // Multi-source scoring is both by default: frame-wise rows beside the source-wise ones, one entry per
        // counted frame (a frame without any object map counts under neither scoring, as in NoPrior).
        assert_eq!(split["model"]["scoring"], "source-wise", "{split}");
        let frames = &split["frame_wise"]["model"];
        assert_eq!(frames["entries"], frames["counted_samples"], "{split}");
        assert_eq!(
            frames["counted_samples"], split["model"]["aggregates"]["counted_samples"],
            "{split}"
        );
        assert_eq!(
            *frames, split["model"]["frame_wise"]["aggregates"],
            "{split}"
        );
    }
    let table = std::fs::read_to_string(ws.data().join("eval/results.md")).unwrap();
    assert!(table.contains("| frame-wise cIoU@0.3 |"), "{table}");
    pictures_and_page_show_the_run(&ws, &metrics);
    eval_refuses_a_model_its_lock_does_not_record(&ws);
    localize_uses_the_trained_model(&ws);
    report_compares_runs(&ws);
    cost_measures_each_phase(&ws);
}

/// `eval/index.html` shows the table and both pictures; the pictures decode at the size their layout gives.
fn pictures_and_page_show_the_run(ws: &Workspace, metrics: &serde_json::Value) {
    let page = std::fs::read_to_string(ws.data().join("eval/index.html")).unwrap();
    let protocol = format!(
        "Protocol <code>{}</code>",
        metrics["protocol"].as_str().unwrap()
    );
    for needle in [
        "<img src=\"gallery.png\"",
        "<img src=\"../train/loss_curve.png\"",
        "<th>frame-wise cIoU@0.3</th>",
        "<td>test_duet</td><td>model</td>",
        "<td>test_single</td><td>centre prior</td>",
        &protocol,
    ] {
        assert!(page.contains(needle), "{needle}: {page}");
    }
    let curve = image::open(ws.data().join("train/loss_curve.png")).unwrap();
    assert_eq!(
        (curve.width(), curve.height()),
        (loss_curve::WIDTH, loss_curve::HEIGHT)
    );
    // Two samples per split, all among the best four: four rows of 64-pixel tiles (64 × 64 frames), then the
    // colour bar; each row labelled left of at least two tiles.
    let gallery = image::open(ws.data().join("eval/gallery.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(gallery.height(), 4 * 66 + gallery::colour_bar_band(64));
    assert!(gallery.width() > 100 + 2 * 66, "{}", gallery.width());
    let text = gallery.pixels().filter(|p| p.0 == [235, 235, 235]).count();
    assert!(text > 4 * 100, "{text} text pixels");
    let colours: std::collections::BTreeSet<[u8; 3]> = gallery.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 50, "{} colours", colours.len());
}

/// A model file changed after training finished (a crash between renames, a retrain in progress) is refused by
/// `eval` and `localize`, naming the file and the fix; the original file is accepted again.
fn eval_refuses_a_model_its_lock_does_not_record(ws: &Workspace) {
    let meta = ws.data().join("train/model.json");
    let original = std::fs::read(&meta).unwrap();
    std::fs::write(&meta, [&original[..], b" "].concat()).unwrap();
    let id = "synth-test-single-00000";
    let frame = ws.data().join(format!("extract/frames/{id}.jpg"));
    let audio = ws.data().join(format!("extract/audio/{id}.wav"));
    let localize = [
        "localize",
        "--frame",
        frame.to_str().unwrap(),
        "--audio",
        audio.to_str().unwrap(),
        "--device",
        "cpu",
    ];
    for args in [&["eval"][..], &localize[..]] {
        let out = ws.oassl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("model.json") && err.contains("make train"),
            "{err}"
        );
    }
    std::fs::write(&meta, original).unwrap();
    assert_ok(&ws.oassl(&["eval"]));
}

/// `oassl localize` on a frame + WAV pair and a list with one unreadable entry.
fn localize_uses_the_trained_model(ws: &Workspace) {
    let id = "synth-test-single-00000";
    let frame = ws.data().join(format!("extract/frames/{id}.jpg"));
    let audio = ws.data().join(format!("extract/audio/{id}.wav"));
    let out_dir = ws.path().join("loc");
    let out = ws.oassl(&[
        "localize",
        "--frame",
        frame.to_str().unwrap(),
        "--audio",
        audio.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--tile",
        "64",
        "--device",
        "cpu",
    ]);
    assert_ok(&out);
    assert!(stdout(&out).contains("images/s"), "{}", stdout(&out));
    let png = image::open(out_dir.join(format!("{id}.png"))).unwrap();
    assert!(
        png.width() >= 2 * 64,
        "frame and S_a tiles: {}",
        png.width()
    );
    let maps = std::fs::read(out_dir.join(format!("{id}.safetensors"))).unwrap();
    let maps = safetensors::SafeTensors::deserialize(&maps).unwrap();
    assert_eq!(maps.tensor("sound_map").unwrap().shape().len(), 2);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("localize.json")).unwrap()).unwrap();
    // The reported peak is the pixel centre of the written sound map's largest value, in frame fractions.
    let sound_map = maps.tensor("sound_map").unwrap();
    let (h, w) = (sound_map.shape()[0], sound_map.shape()[1]);
    let values: Vec<f32> = sound_map
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let arg = (0..values.len())
        .max_by(|&a, &b| values[a].total_cmp(&values[b]).then(b.cmp(&a)))
        .unwrap();
    let expected = [
        ((arg % w) as f64 + 0.5) / w as f64,
        ((arg / w) as f64 + 0.5) / h as f64,
    ];
    let peak = &report["clips"][0]["peak"];
    let peak = [peak[0].as_f64().unwrap(), peak[1].as_f64().unwrap()];
    assert!(
        (peak[0] - expected[0]).abs() < 1e-9 && (peak[1] - expected[1]).abs() < 1e-9,
        "peak {peak:?}, map argmax at {expected:?} ({h}x{w})"
    );

    let list = ws.path().join("clips.txt");
    std::fs::write(
        &list,
        format!(
            "# frame,wav pairs\n{},{}\nmissing.jpg,missing.wav\n",
            frame.display(),
            audio.display()
        ),
    )
    .unwrap();
    let out = ws.oassl(&[
        "localize",
        "--list",
        list.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("missing.jpg"), "{}", stderr(&out));
    assert!(ws.data().join(format!("localize/{id}.png")).is_file());
    let bad = ws.path().join("bad.txt");
    std::fs::write(&bad, "a,b,c\n").unwrap();
    let out = ws.oassl(&["localize", "--list", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));
}

/// `oassl report` with two objectives, one λ pair and a CLIP text tower, two seeds each: four runs of two
/// trainings, one table per group with mean ± std, reruns reuse them.
fn report_compares_runs(ws: &Workspace) {
    let config = std::fs::read_to_string(ws.config()).unwrap();
    // The text-encoder row with the tiny random CLIP text tower of stage two's fixtures.
    let clip = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("stages/embed/tests/fixtures/tiny_clip");
    std::fs::write(
        ws.config(),
        format!(
            "{config}[report]\nmethods = [\"lvs\", \"oassl\"]\nlambda_sweep = [[1.0, 1.0]]\nepochs = 1\n\
             seeds = 2\nclip_model_dir = {:?}\n",
            clip.display().to_string()
        ),
    )
    .unwrap();
    let out = ws.oassl(&["report"]);
    assert_ok(&out);
    let md = std::fs::read_to_string(ws.data().join("report/report.md")).unwrap();
    for want in [
        "Objectives",
        "Table 3 layout",
        "| LVS |",
        "| OA-SSL | all-MiniLM-L6-v2 | 1 | 0.1 |",
        "| OA-SSL | all-MiniLM-L6-v2 | 1 | 1 |",
        "Text encoders (Table 2 layout)",
        "| OA-SSL | tiny_clip | 1 | 0.1 |",
        "test_duet CAP (%)",
        "test_single IoU@0.5 (%)",
        "centre prior",
        " ± ",
        "| test_duet AUC | ",
        "test_duet frame-wise CIoU@0.3 (%)",
        "| test_duet frame-wise AUC | ",
        "seeds 0..=1",
    ] {
        assert!(md.contains(want), "{want} missing:\n{md}");
    }
    for run in ["lvs", "oassl", "oassl-l1-1-l2-1", "oassl-clip"] {
        for folder in [run.to_string(), format!("{run}-seed1")] {
            let metrics = ws.data().join(format!("report/{folder}/eval/metrics.json"));
            assert!(metrics.is_file(), "{}", metrics.display());
        }
    }
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.data().join("report/report.json")).unwrap())
            .unwrap();
    assert_eq!(results.as_array().unwrap().len(), 4);
    let seeds: Vec<u64> = results[0]["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, [0, 1]);
    assert_eq!(
        results[0]["summary"][0]["metrics"]["auc"]["values"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(ws
        .data()
        .join("report/oassl-clip/embed/sample_text.parquet")
        .is_file());
    assert!(results[0]["reused"] == false);
    let again = ws.oassl(&["report"]);
    assert_ok(&again);
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.data().join("report/report.json")).unwrap())
            .unwrap();
    assert!(
        results
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["reused"] == true),
        "{results}"
    );
}

/// `oassl cost`: one row per phase, each from its own process, with positive times and a memory figure.
fn cost_measures_each_phase(ws: &Workspace) {
    let out = ws.oassl(&[
        "cost",
        "--phases",
        "train:oassl,infer",
        "--iterations",
        "1",
        "--warmup",
        "0",
        "--batch-size",
        "2",
    ]);
    assert_ok(&out);
    let rows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.data().join("cost/cost.json")).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["phase"], "train:oassl");
    assert_eq!(rows[0]["batch_size"], 2);
    assert_eq!(rows[1]["phase"], "infer");
    let (train, infer) = (&rows[0], &rows[1]);
    let seconds = |r: &serde_json::Value| r["seconds_per_iter"].as_f64().unwrap();
    let params = train["parameters"].as_f64().unwrap();
    // Two ResNet-18 trunks (11.2 M parameters each without their classifier) train here.
    assert!(params > 2.0 * 11.0e6, "{train}");
    assert_eq!(train["parameters"], infer["parameters"]);
    // A training step is a forward pass plus a backward pass and Adam: slower than inference at one batch size.
    assert!(seconds(train) > seconds(infer), "{train} vs {infer}");
    // Weights, gradients and both Adam moments are in memory at once while training (fp32).
    let peak = train["peak_memory_bytes"].as_f64().unwrap();
    assert!(peak >= 4.0 * 4.0 * params, "{train}");
    let md = std::fs::read_to_string(ws.data().join("cost/cost.md")).unwrap();
    assert!(md.contains("| infer | Cpu | 1 |"), "{md}");
    // Captions came from the labels here, so there is no MLLM journal to time.
    assert!(!md.contains("captions (MLLM)"), "{md}");
    let out = ws.oassl(&["cost", "--phases", "train:fast"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("train:fast"), "{}", stderr(&out));
}
