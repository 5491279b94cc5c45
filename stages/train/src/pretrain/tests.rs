//! `oassl pretrain` on a tiny AVS-Synth set: torchvision-named weights that the training model loads, an
//! up-to-date rerun, and the refusal of a pretraining split that shares a scene with the manifest.

use oassl_pipeline::config::{PretrainConfig, SynthConfig};
use oassl_pipeline::Layout;
use tch::{nn, Device};

use super::{run, WEIGHTS_FILE};
use crate::model::{load_torchvision_trunk, ModelConfig, OasslModel};

fn tiny_set(root: &std::path::Path) -> Layout {
    let layout = Layout::new(root);
    let synth = SynthConfig {
        width: 64,
        height: 64,
        train_single: 2,
        train_duet: 2,
        test_single: 2,
        test_duet: 2,
        pretrain: 24,
        ..SynthConfig::default()
    };
    oassl_synth::generate(&synth, &layout, oassl_synth::OutputLayout::Extracted).unwrap();
    layout
}

fn tiny_config() -> PretrainConfig {
    PretrainConfig {
        device: "cpu".into(),
        image_size: 48,
        batch_size: 8,
        steps: 3,
        held_out: 0.25,
        ..PretrainConfig::default()
    }
}

#[test]
fn pretrained_trunk_loads_into_the_training_model_and_reruns_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let layout = tiny_set(dir.path());
    let cfg = tiny_config();
    let s = run(&cfg, &layout, false).unwrap();
    assert!(!s.up_to_date);
    assert_eq!((s.train_frames, s.held_out_frames, s.steps), (18, 6, 3));
    assert!(s.final_loss.is_finite() && s.final_loss > 0.0, "{s:?}");
    assert!((0.0..=1.0).contains(&s.held_out_label_accuracy));
    let weights = layout.stage_dir("pretrain").join(WEIGHTS_FILE);
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = OasslModel::new(
        vs.root(),
        &ModelConfig {
            visual_output_stride: 16,
            ..ModelConfig::default()
        },
    )
    .unwrap();
    let copied = load_torchvision_trunk(&vs, "visual", &weights).unwrap();
    assert_eq!(copied, 100, "every visual trunk tensor comes from the file");
    let file = tch::Tensor::read_safetensors(&weights).unwrap();
    let fc = file.iter().find(|(n, _)| n == "fc.weight").unwrap();
    assert_eq!(fc.1.size(), [s.classes.len() as i64, 512]);

    let again = run(&cfg, &layout, false).unwrap();
    assert!(again.up_to_date, "{again:?}");
    assert_eq!(again.steps, 3);
    // A changed setting trains again.
    let more = run(&PretrainConfig { steps: 4, ..cfg }, &layout, false).unwrap();
    assert!(!more.up_to_date && more.steps == 4);
}

#[test]
fn a_pretraining_split_that_shares_a_scene_with_the_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = tiny_set(dir.path());
    // A test clip's id among the pretraining frames.
    let labels = std::fs::read_to_string(layout.pretrain_labels()).unwrap();
    let leaked = labels.replacen("synth-pretrain-00000,", "synth-test-single-00000,", 1);
    std::fs::write(layout.pretrain_labels(), &leaked).unwrap();
    let err = format!("{:#}", run(&tiny_config(), &layout, false).unwrap_err());
    assert!(
        err.contains("synth-test-single-00000") && err.contains("share no scene"),
        "{err}"
    );
    std::fs::write(layout.pretrain_labels(), &labels).unwrap();

    // A test scene drawn again under a pretraining id.
    let scenes: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(layout.scenes()).unwrap()).unwrap();
    let test_scene = scenes.iter().find(|s| s["split"] == "test_duet").unwrap();
    let mut pre: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(layout.pretrain_scenes()).unwrap()).unwrap();
    pre[3]["background"] = test_scene["background"].clone();
    pre[3]["objects"] = test_scene["objects"].clone();
    std::fs::write(layout.pretrain_scenes(), serde_json::to_vec(&pre).unwrap()).unwrap();
    let err = format!("{:#}", run(&tiny_config(), &layout, false).unwrap_err());
    let twin = test_scene["id"].as_str().unwrap();
    assert!(
        err.contains(twin) && err.contains("synth-pretrain-00003"),
        "{err}"
    );
    assert!(!layout.stage_dir("pretrain").join(WEIGHTS_FILE).exists());
}
