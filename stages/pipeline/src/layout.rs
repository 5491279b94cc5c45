//! Where every stage's files live under the data folder.
//!
//! ```text
//! <data>/dataset/manifest.csv            the clips to process (see `manifest`)
//! <data>/dataset/videos/<split>/<id>.mp4  AVS-Synth videos (or anything the manifest points at)
//! <data>/dataset/ground_truth/<split>.json  boxes of the sounding objects, VGG-SS json form
//! <data>/dataset/scenes.json              AVS-Synth full scene metadata (every object, sounding or not)
//! <data>/dataset/pretrain/                AVS-Synth pretraining split: frames/<id>.jpg, labels.csv, scenes.json
//! <data>/pretrain/                        `oassl pretrain`: the pretrained visual trunk
//! <data>/extract/frames/<id>.jpg          stage one: the frame at the clip centre
//! <data>/extract/audio/<id>.wav           stage one: mono audio window
//! <data>/captions/captions.parquet        stage one: MLLM captions
//! <data>/embed/embeddings.parquet         stage two: caption text embeddings
//! <data>/train/                           stage three: checkpoints, logs
//! <data>/eval/                            metrics, tables, galleries
//! <data>/<stage>/stage.lock.json          what a stage last ran on (see `stage_lock`)
//! ```

use std::path::{Path, PathBuf};

use crate::SampleId;

/// Paths of every file the pipeline reads or writes, rooted at the data folder.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    /// Stages whose folder lives elsewhere (see [`Layout::with_stage_dir`]).
    moved: Vec<(String, PathBuf)>,
}

impl Layout {
    /// A layout rooted at `root` (the `[data] root` of `pipeline.toml`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            moved: Vec::new(),
        }
    }

    /// The same layout with `stage`'s folder (and its lock) at `dir`; how `oassl report` gives every run its
    /// own `train/` and `eval/` while they all read one dataset and one set of extracted clips.
    pub fn with_stage_dir(mut self, stage: &str, dir: impl Into<PathBuf>) -> Self {
        self.moved.retain(|(s, _)| s != stage);
        self.moved.push((stage.to_string(), dir.into()));
        self
    }

    /// The data folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Folder of the input dataset (manifest, videos, ground truth).
    pub fn dataset_dir(&self) -> PathBuf {
        self.root.join("dataset")
    }

    /// The manifest table: one row per clip.
    pub fn manifest(&self) -> PathBuf {
        self.dataset_dir().join("manifest.csv")
    }

    /// Video file of a generated clip.
    pub fn video(&self, split: &str, id: &SampleId) -> PathBuf {
        self.dataset_dir()
            .join("videos")
            .join(split)
            .join(format!("{id}.mp4"))
    }

    /// Ground truth of one split, VGG-SS json form (a list of `{file, class, bbox, classes}`).
    pub fn ground_truth(&self, split: &str) -> PathBuf {
        self.dataset_dir()
            .join("ground_truth")
            .join(format!("{split}.json"))
    }

    /// Full scene metadata of a generated dataset.
    pub fn scenes(&self) -> PathBuf {
        self.dataset_dir().join("scenes.json")
    }

    /// Folder of the pretraining split (frames with object labels, kept out of the manifest).
    pub fn pretrain_dir(&self) -> PathBuf {
        self.dataset_dir().join("pretrain")
    }

    /// A pretraining frame.
    pub fn pretrain_frame(&self, id: &SampleId) -> PathBuf {
        self.pretrain_dir().join("frames").join(format!("{id}.jpg"))
    }

    /// The pretraining labels: `id,classes` with `|`-separated class names.
    pub fn pretrain_labels(&self) -> PathBuf {
        self.pretrain_dir().join("labels.csv")
    }

    /// Scene metadata of the pretraining split.
    pub fn pretrain_scenes(&self) -> PathBuf {
        self.pretrain_dir().join("scenes.json")
    }

    /// Folder of stage one's extracted frames and audio.
    pub fn extract_dir(&self) -> PathBuf {
        self.root.join("extract")
    }

    /// Extracted frame of a clip.
    pub fn frame(&self, id: &SampleId) -> PathBuf {
        self.extract_dir().join("frames").join(format!("{id}.jpg"))
    }

    /// Extracted audio of a clip.
    pub fn audio(&self, id: &SampleId) -> PathBuf {
        self.extract_dir().join("audio").join(format!("{id}.wav"))
    }

    /// Folder of a stage's outputs (`captions`, `embed`, `train`, `eval`, ...).
    pub fn stage_dir(&self, stage: &str) -> PathBuf {
        match self.moved.iter().find(|(s, _)| s == stage) {
            Some((_, dir)) => dir.clone(),
            None => self.root.join(stage),
        }
    }

    /// The lock file a stage writes last.
    pub fn stage_lock(&self, stage: &str) -> PathBuf {
        self.stage_dir(stage).join("stage.lock.json")
    }

    /// Stage one's captions table.
    pub fn captions(&self) -> PathBuf {
        self.stage_dir("captions").join("captions.parquet")
    }

    /// Stage two's embeddings table.
    pub fn embeddings(&self) -> PathBuf {
        self.stage_dir("embed").join("embeddings.parquet")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_stages_keep_their_lock_and_leave_the_rest() {
        let layout = Layout::new("/data").with_stage_dir("train", "/runs/a/train");
        assert_eq!(layout.stage_dir("train"), PathBuf::from("/runs/a/train"));
        assert_eq!(
            layout.stage_lock("train"),
            PathBuf::from("/runs/a/train/stage.lock.json")
        );
        assert_eq!(layout.stage_dir("eval"), PathBuf::from("/data/eval"));
        assert_eq!(
            layout.embeddings(),
            PathBuf::from("/data/embed/embeddings.parquet")
        );
        let again = layout.with_stage_dir("train", "/runs/b/train");
        assert_eq!(again.stage_dir("train"), PathBuf::from("/runs/b/train"));
    }

    #[test]
    fn sample_files_stay_under_root() {
        let layout = Layout::new("/data");
        let id = SampleId::parse("clip_1").unwrap();
        assert_eq!(
            layout.frame(&id),
            PathBuf::from("/data/extract/frames/clip_1.jpg")
        );
        assert_eq!(
            layout.audio(&id),
            PathBuf::from("/data/extract/audio/clip_1.wav")
        );
        assert_eq!(
            layout.video("train", &id),
            PathBuf::from("/data/dataset/videos/train/clip_1.mp4")
        );
        assert!(layout.stage_lock("embed").starts_with("/data/embed"));
    }
}
