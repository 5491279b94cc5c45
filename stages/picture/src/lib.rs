//! Drawing the pictures stages write: text, axes, colour bars; and the results page that shows them.
//!
//! Everything is drawn pixel by pixel on an [`image::RgbImage`]: text uses a 5×7 bitmap font of its own
//! ([`glyphs`]), so pictures carry their labels on hosts without any font file.
//!
//! - [`glyphs`]: the font, one row bitmask per glyph row;
//! - [`text`]: text at an integer scale, left to right or read upward;
//! - [`stroke`]: lines and filled rectangles;
//! - [`axes`]: round tick values and a chart's frame, ticks, tick labels and axis titles;
//! - [`colour_bar`]: the heatmap colour scale and a bar showing it;
//! - [`page`]: a self-contained HTML page with a Markdown report and figures.

pub mod axes;
pub mod colour_bar;
pub mod glyphs;
pub mod page;
pub mod stroke;
pub mod text;
