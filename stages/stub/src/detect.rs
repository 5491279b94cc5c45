//! Finding AVS-Synth objects in an image by colour, and telling played ones from silent ones.

use image::RgbImage;
use oassl_synth::catalogue::{hue_distance, rgb_to_hsv, CATALOGUE};

/// An object found in the image.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Index into the catalogue.
    pub class: usize,
    /// Pixel box `[x1, y1, x2, y2]`, end-exclusive.
    pub bbox: [u32; 4],
    pub area: usize,
    /// Dark vibration marks were found just right of the object.
    pub played: bool,
}

/// The catalogue class a pixel's colour reads as, if any: saturated, bright enough, near a class hue.
fn pixel_class(p: [u8; 3]) -> Option<u8> {
    let (h, s, v) = rgb_to_hsv(p);
    if s < 0.45 || v < 0.25 {
        return None;
    }
    CATALOGUE
        .iter()
        .position(|c| hue_distance(h, c.hue) < 14.0)
        .map(|i| i as u8)
}

fn is_dark(p: [u8; 3]) -> bool {
    p.iter().all(|&c| c < 80)
}

/// Finds objects: connected regions of one class colour larger than 0.2% of the image.
pub fn detect(img: &RgbImage) -> Vec<Detection> {
    let (w, h) = img.dimensions();
    let (wu, hu) = (w as usize, h as usize);
    let labels: Vec<Option<u8>> = img.pixels().map(|p| pixel_class(p.0)).collect();
    let mut seen = vec![false; wu * hu];
    let min_area = (wu * hu) / 500;
    let mut found = Vec::new();
    let mut stack = Vec::new();
    for start in 0..wu * hu {
        let Some(class) = labels[start] else { continue };
        if seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1, mut area) = (usize::MAX, usize::MAX, 0, 0, 0);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % wu, i / wu);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x + 1);
            y1 = y1.max(y + 1);
            area += 1;
            let mut visit = |j: usize| {
                if !seen[j] && labels[j] == Some(class) {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < wu {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - wu);
            }
            if y + 1 < hu {
                visit(i + wu);
            }
        }
        if area >= min_area.max(1) {
            let bbox = [x0 as u32, y0 as u32, x1 as u32, y1 as u32];
            found.push(Detection {
                class: usize::from(class),
                bbox,
                area,
                played: has_cue(img, bbox),
            });
        }
    }
    found
}

/// Looks for the dark marks in a strip to the right of the box.
fn has_cue(img: &RgbImage, bbox: [u32; 4]) -> bool {
    let (w, h) = img.dimensions();
    let strip = (w * 16 / 224).max(4);
    let x_end = (bbox[2] + strip).min(w);
    let (y0, y1) = (bbox[1], bbox[3].min(h));
    let mut dark = 0usize;
    for y in y0..y1 {
        for x in bbox[2]..x_end {
            if is_dark(img.get_pixel(x, y).0) {
                dark += 1;
            }
        }
    }
    // The marks cover ~3 x 2 px x half the object's height at 224 px; ask for a third of that.
    let needed = ((y1 - y0) as usize).max(1);
    dark >= needed
}

#[cfg(test)]
mod tests {
    use super::*;
    use oassl_pipeline::config::SynthConfig;
    use oassl_synth::render::render_frame;
    use oassl_synth::scene::sample_scene;
    use rand::SeedableRng;

    #[test]
    fn finds_every_object_and_whether_it_is_played() {
        let cfg = SynthConfig::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for i in 0..30 {
            let scene = sample_scene(
                &mut rng,
                &cfg,
                &oassl_synth::scene::background_pool(&cfg),
                format!("d{i}"),
                "test",
                1 + i % 2,
            );
            let img = render_frame(&scene, cfg.clip_seconds / 2.0, cfg.clip_seconds);
            // Through JPEG, as the stand-in receives it.
            let mut jpeg = Vec::new();
            img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                &mut jpeg, 85,
            ))
            .unwrap();
            let img = image::load_from_memory(&jpeg).unwrap().to_rgb8();
            let mut found = detect(&img);
            assert_eq!(found.len(), scene.objects.len(), "scene {i}: {found:?}");
            for obj in &scene.objects {
                let cx = ((obj.bbox[0] + obj.bbox[2]) / 2.0 * 224.0) as u32;
                let cy = ((obj.bbox[1] + obj.bbox[3]) / 2.0 * 224.0) as u32;
                let pos = found
                    .iter()
                    .position(|d| {
                        d.class == obj.class
                            && d.bbox[0] <= cx
                            && cx < d.bbox[2]
                            && d.bbox[1] <= cy
                            && cy < d.bbox[3]
                    })
                    .unwrap_or_else(|| panic!("scene {i}: {} not found", obj.class_name));
                let d = found.remove(pos);
                assert_eq!(
                    d.played, obj.sounding,
                    "scene {i}: {} played flag",
                    obj.class_name
                );
            }
        }
    }
}
