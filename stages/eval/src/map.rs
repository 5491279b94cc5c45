//! A dense single-channel 2-D map (heat map, binary prediction or ground-truth map), row-major f64.

use serde::{Deserialize, Serialize};

/// Row-major `height x width` map of f64 values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Map {
    pub height: usize,
    pub width: usize,
    pub data: Vec<f64>,
}

impl Map {
    /// An all-zero map.
    pub fn zeros(height: usize, width: usize) -> Self {
        Map {
            height,
            width,
            data: vec![0.0; height * width],
        }
    }

    /// Wraps `data`; `None` when the length does not match the shape.
    pub fn from_vec(height: usize, width: usize, data: Vec<f64>) -> Option<Self> {
        (data.len() == height * width).then_some(Map {
            height,
            width,
            data,
        })
    }

    /// Value at row `y`, column `x`.
    pub fn at(&self, y: usize, x: usize) -> f64 {
        self.data[y * self.width + x]
    }

    /// Number of pixels.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True for a map without pixels.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Splits into `n` equal tiles along rows (`vertical`) or columns, like `np.split`.
    pub fn split(&self, n: usize, vertical: bool) -> Vec<Map> {
        if n <= 1 {
            return vec![self.clone()];
        }
        if vertical {
            let th = self.height / n;
            (0..n)
                .map(|t| Map {
                    height: th,
                    width: self.width,
                    data: self.data[t * th * self.width..(t + 1) * th * self.width].to_vec(),
                })
                .collect()
        } else {
            let tw = self.width / n;
            (0..n)
                .map(|t| {
                    let mut data = Vec::with_capacity(self.height * tw);
                    for y in 0..self.height {
                        let row = y * self.width + t * tw;
                        data.extend_from_slice(&self.data[row..row + tw]);
                    }
                    Map {
                        height: self.height,
                        width: tw,
                        data,
                    }
                })
                .collect()
        }
    }

    /// Concatenates equally sized tiles along rows (`vertical`) or columns.
    pub fn concat(tiles: &[Map], vertical: bool) -> Map {
        let Some(first) = tiles.first() else {
            return Map::zeros(0, 0);
        };
        if vertical {
            Map {
                height: first.height * tiles.len(),
                width: first.width,
                data: tiles.iter().flat_map(|t| t.data.iter().copied()).collect(),
            }
        } else {
            let width = first.width * tiles.len();
            let mut data = Vec::with_capacity(first.height * width);
            for y in 0..first.height {
                for t in tiles {
                    data.extend_from_slice(&t.data[y * t.width..(y + 1) * t.width]);
                }
            }
            Map {
                height: first.height,
                width,
                data,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_concat_round_trip() {
        let m = Map::from_vec(2, 4, (0..8).map(f64::from).collect()).unwrap();
        let cols = m.split(2, false);
        assert_eq!(cols[0].data, vec![0.0, 1.0, 4.0, 5.0]);
        assert_eq!(cols[1].data, vec![2.0, 3.0, 6.0, 7.0]);
        assert_eq!(Map::concat(&cols, false), m);
        let rows = m.split(2, true);
        assert_eq!(rows[1].data, vec![4.0, 5.0, 6.0, 7.0]);
        assert_eq!(Map::concat(&rows, true), m);
    }
}
