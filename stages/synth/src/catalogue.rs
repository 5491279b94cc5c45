//! The object classes: each has a distinct look (hue, shape, texture) and a distinct sound.
//!
//! Hues are 30 degrees apart and fully saturated while backgrounds are nearly grey, so an object's class can be
//! read off its pixels (the MLLM stand-in relies on this).

use serde::{Deserialize, Serialize};

/// Outline of an object, drawn in a square of side `size` pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Circle,
    Square,
    Triangle,
    Diamond,
    Hexagon,
    Cross,
    Ring,
    Ellipse,
}

/// Surface pattern: the base colour alternates with a darker shade of the same hue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Texture {
    Solid,
    Stripes,
    Dots,
    Checker,
}

/// A class's sound: a harmonic tone with its own fundamental, harmonic weights and modulation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SoundSignature {
    /// Fundamental frequency in Hz.
    pub f0: f64,
    /// Amplitude of harmonic n is `n^-rolloff`.
    pub rolloff: f64,
    /// Only odd harmonics (a clarinet-like timbre) when true.
    pub odd_only: bool,
    /// Amplitude modulation rate in Hz (tremolo, or the rate of strikes when `percussive`).
    pub modulation_hz: f64,
    /// Repeated decaying strikes instead of a sustained tone.
    pub percussive: bool,
}

/// One object class of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ObjectClass {
    /// Human-readable class name, used as the audio label ("red drum").
    pub name: &'static str,
    /// Hue in degrees.
    pub hue: f64,
    pub shape: Shape,
    pub texture: Texture,
    pub sound: SoundSignature,
}

const fn sound(
    f0: f64,
    rolloff: f64,
    odd_only: bool,
    modulation_hz: f64,
    percussive: bool,
) -> SoundSignature {
    SoundSignature {
        f0,
        rolloff,
        odd_only,
        modulation_hz,
        percussive,
    }
}

/// All classes; a dataset uses the first `num_classes`.
pub const CATALOGUE: [ObjectClass; 12] = [
    ObjectClass {
        name: "red drum",
        hue: 0.0,
        shape: Shape::Circle,
        texture: Texture::Stripes,
        sound: sound(98.0, 1.6, false, 3.0, true),
    },
    ObjectClass {
        name: "green guitar",
        hue: 120.0,
        shape: Shape::Hexagon,
        texture: Texture::Solid,
        sound: sound(196.0, 1.2, false, 0.0, false),
    },
    ObjectClass {
        name: "blue piano",
        hue: 240.0,
        shape: Shape::Square,
        texture: Texture::Checker,
        sound: sound(262.0, 1.8, false, 2.0, true),
    },
    ObjectClass {
        name: "yellow trumpet",
        hue: 60.0,
        shape: Shape::Triangle,
        texture: Texture::Solid,
        sound: sound(466.0, 0.7, false, 5.5, false),
    },
    ObjectClass {
        name: "cyan flute",
        hue: 180.0,
        shape: Shape::Ellipse,
        texture: Texture::Dots,
        sound: sound(784.0, 2.5, false, 6.0, false),
    },
    ObjectClass {
        name: "magenta violin",
        hue: 300.0,
        shape: Shape::Diamond,
        texture: Texture::Stripes,
        sound: sound(587.0, 1.0, false, 7.0, false),
    },
    ObjectClass {
        name: "orange tuba",
        hue: 30.0,
        shape: Shape::Ring,
        texture: Texture::Solid,
        sound: sound(73.0, 0.9, true, 1.5, false),
    },
    ObjectClass {
        name: "teal clarinet",
        hue: 150.0,
        shape: Shape::Cross,
        texture: Texture::Solid,
        sound: sound(349.0, 1.1, true, 4.0, false),
    },
    ObjectClass {
        name: "violet harp",
        hue: 270.0,
        shape: Shape::Circle,
        texture: Texture::Dots,
        sound: sound(523.0, 2.0, false, 4.5, true),
    },
    ObjectClass {
        name: "lime maraca",
        hue: 90.0,
        shape: Shape::Diamond,
        texture: Texture::Checker,
        sound: sound(1318.0, 3.0, false, 8.0, true),
    },
    ObjectClass {
        name: "azure cello",
        hue: 210.0,
        shape: Shape::Ellipse,
        texture: Texture::Stripes,
        sound: sound(131.0, 1.3, false, 5.0, false),
    },
    ObjectClass {
        name: "pink bell",
        hue: 330.0,
        shape: Shape::Triangle,
        texture: Texture::Dots,
        sound: sound(1047.0, 1.5, false, 1.0, true),
    },
];

/// The class named `name`, if any.
pub fn by_name(name: &str) -> Option<(usize, &'static ObjectClass)> {
    CATALOGUE.iter().enumerate().find(|(_, c)| c.name == name)
}

/// Converts HSV (hue in degrees, s and v in 0..=1) to RGB bytes.
pub fn hsv_to_rgb(h: f64, s: f64, v: f64) -> [u8; 3] {
    let h = h.rem_euclid(360.0) / 60.0;
    let c = v * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    let byte = |f: f64| ((f + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    [byte(r), byte(g), byte(b)]
}

/// Converts RGB bytes to HSV (hue in degrees, s and v in 0..=1).
pub fn rgb_to_hsv(rgb: [u8; 3]) -> (f64, f64, f64) {
    let [r, g, b] = rgb.map(|c| f64::from(c) / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let h = if d == 0.0 {
        0.0
    } else if max == r {
        60.0 * ((g - b) / d).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    let s = if max == 0.0 { 0.0 } else { d / max };
    (h, s, max)
}

/// Angular distance between two hues in degrees.
pub fn hue_distance(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_distinct() {
        for (i, a) in CATALOGUE.iter().enumerate() {
            for b in &CATALOGUE[i + 1..] {
                assert_ne!(a.name, b.name);
                assert!(
                    hue_distance(a.hue, b.hue) >= 30.0,
                    "{} vs {}",
                    a.name,
                    b.name
                );
                assert!((a.sound.f0 - b.sound.f0).abs() > 10.0);
            }
        }
    }

    #[test]
    fn hsv_round_trip() {
        for c in &CATALOGUE {
            let (h, s, v) = rgb_to_hsv(hsv_to_rgb(c.hue, 1.0, 0.9));
            assert!(hue_distance(h, c.hue) < 2.0, "{} -> {h}", c.name);
            assert!((s - 1.0).abs() < 0.01 && (v - 0.9).abs() < 0.01);
        }
        assert_eq!(by_name("red drum").map(|(i, _)| i), Some(0));
    }
}
