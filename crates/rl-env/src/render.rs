//! Gymnasium's `render_mode="rgb_array"`: environments draw their state into an RGB [`Frame`]
//! with a tiny software rasterizer, so rendering needs no window, GPU or image library.
//!
//! The shapes, sizes and colors are Gymnasium's (pygame + SDL_gfx); edges are not
//! anti-aliased, so a frame holds only the colors of [`Render::palette`], which keeps
//! palette-based encoders (GIF) exact and fast.
//!
//! [`Render`] is implemented for CartPole, Acrobot, MountainCar and MountainCarContinuous, and
//! passed through by the wrappers. Pendulum has none: its picture needs the last torque and
//! Gymnasium's arrow image.
//!
//! ```
//! use rl_env::classic_control::CartPole;
//! use rl_env::render::{Frame, Render};
//! use rl_env::Env;
//!
//! let mut env = CartPole::new();
//! env.reset(Some(0))?;
//! let mut frame = Frame::default();
//! env.render_rgb(&mut frame)?; // resized to 600 x 400 on first use, reused afterwards
//! assert_eq!((frame.width(), frame.height()), (600, 400));
//! assert_eq!(frame.pixel(0, 0), Some([255, 255, 255]));
//! # Ok::<(), rl_env::EnvError>(())
//! ```

use crate::error::{EnvError, Result};
use crate::wrappers::{
    ClipAction, Monitor, NormalizeObservation, NormalizeReward, RecordEpisodeStatistics, TimeLimit,
};
use crate::Env;

mod classic_control;

pub use classic_control::{
    ACROBOT_JOINT, ACROBOT_LINK, CARTPOLE_AXLE, CARTPOLE_POLE, MOUNTAIN_CAR_FLAG,
    MOUNTAIN_CAR_WHEEL,
};

/// An RGB color.
pub type Rgb = [u8; 3];

/// White, the background of the classic-control renderings.
pub const WHITE: Rgb = [255, 255, 255];
/// Black.
pub const BLACK: Rgb = [0, 0, 0];

/// An RGB image, 8 bits per channel, rows top to bottom (the layout of Gymnasium's
/// `rgb_array`, an `(height, width, 3)` `uint8` array).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl Frame {
    /// A black `width` x `height` frame; errors when its byte size overflows `usize`.
    pub fn new(width: usize, height: usize) -> Result<Self> {
        let mut frame = Frame::default();
        frame.resize(width, height)?;
        Ok(frame)
    }

    /// Changes the size, reusing the allocation; the contents are unspecified afterwards.
    pub fn resize(&mut self, width: usize, height: usize) -> Result<()> {
        let len = width
            .checked_mul(height)
            .and_then(|n| n.checked_mul(3))
            .ok_or_else(|| {
                EnvError::InvalidArgument(format!("a {width} x {height} RGB frame is too large"))
            })?;
        self.width = width;
        self.height = height;
        self.data.resize(len, 0);
        Ok(())
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixels, `height * width * 3` bytes, row-major from the top-left corner.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The pixels, taking them out of the frame.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// The color at column `x`, row `y` (0 = top), or `None` outside the frame.
    pub fn pixel(&self, x: usize, y: usize) -> Option<Rgb> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y * self.width + x) * 3;
        Some([self.data[i], self.data[i + 1], self.data[i + 2]])
    }

    /// Paints the whole frame.
    pub fn fill(&mut self, color: Rgb) {
        for px in self.data.chunks_exact_mut(3) {
            px.copy_from_slice(&color);
        }
    }

    /// Paints row `y`, columns `x0..=x1` (either order); the part outside the frame is clipped.
    pub fn hline(&mut self, x0: i64, x1: i64, y: i64, color: Rgb) {
        let (lo, hi) = (x0.min(x1).max(0), x0.max(x1).min(self.width as i64 - 1));
        if y < 0 || y >= self.height as i64 || lo > hi {
            return;
        }
        let row = y as usize * self.width;
        for px in
            self.data[(row + lo as usize) * 3..=(row + hi as usize) * 3 + 2].chunks_exact_mut(3)
        {
            px.copy_from_slice(&color);
        }
    }

    /// Paints the rectangle of columns `x0..=x1` and rows `y0..=y1` (corners in either order),
    /// clipped to the frame.
    pub fn fill_rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb) {
        let (top, bottom) = (y0.min(y1).max(0), y0.max(y1).min(self.height as i64 - 1));
        for y in top..=bottom {
            self.hline(x0, x1, y, color);
        }
    }

    /// Paints a convex polygon, boundary included. Vertices snap to the pixel grid first
    /// (`floor`, as SDL_gfx takes integer coordinates); a non-convex outline is filled as its
    /// row-wise hull, and a vertex with a non-finite coordinate draws nothing.
    pub fn fill_convex_polygon(&mut self, vertices: &[[f64; 2]], color: Rgb) {
        if vertices.is_empty() || vertices.iter().flatten().any(|c| !c.is_finite()) {
            return;
        }
        let snap = |v: &[f64; 2]| [v[0].floor(), v[1].floor()];
        let (mut y_min, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in vertices {
            let [_, y] = snap(v);
            y_min = y_min.min(y);
            y_max = y_max.max(y);
        }
        // Clamp before converting so that huge coordinates cannot make a huge loop.
        let top = y_min.max(0.0) as i64;
        let bottom = y_max.min(self.height as f64 - 1.0) as i64;
        for y in top..=bottom {
            let yf = y as f64;
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for (i, a) in vertices.iter().enumerate() {
                let (a, b) = (snap(a), snap(&vertices[(i + 1) % vertices.len()]));
                if yf < a[1].min(b[1]) || yf > a[1].max(b[1]) {
                    continue;
                }
                let xs = if a[1] == b[1] {
                    [a[0], b[0]]
                } else {
                    let x = a[0] + (yf - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
                    [x, x]
                };
                for x in xs {
                    lo = lo.min(x);
                    hi = hi.max(x);
                }
            }
            if lo <= hi {
                // `as` saturates, so far-off-screen spans stay in range for `hline` to clip.
                self.hline(lo.round() as i64, hi.round() as i64, y, color);
            }
        }
    }

    /// Paints the disc of radius `r` centered on pixel `(cx, cy)`: the pixels whose offset
    /// `(dx, dy)` has `dx² + dy² <= r²`. A negative radius draws nothing.
    pub fn fill_circle(&mut self, cx: i64, cy: i64, r: i64, color: Rgb) {
        if r < 0 {
            return;
        }
        let top = cy.saturating_sub(r).max(0);
        let bottom = cy.saturating_add(r).min(self.height as i64 - 1);
        for y in top..=bottom {
            let dy = y as f64 - cy as f64;
            let half = ((r as f64).powi(2) - dy * dy).sqrt().floor() as i64;
            self.hline(cx.saturating_sub(half), cx.saturating_add(half), y, color);
        }
    }

    /// Paints the 1-pixel line from `from` to `to` (endpoints included, snapped to the pixel
    /// grid with `floor`), clipped to the frame; a non-finite coordinate draws nothing.
    pub fn line(&mut self, from: [f64; 2], to: [f64; 2], color: Rgb) {
        let ([x0, y0], [x1, y1]) = (from.map(f64::floor), to.map(f64::floor));
        let (w, h) = (self.width as f64 - 1.0, self.height as f64 - 1.0);
        if ![x0, y0, x1, y1].iter().all(|c| c.is_finite()) || w < 0.0 || h < 0.0 {
            return;
        }
        // Step along the longer axis, one pixel per column (or row), only where it is on screen.
        let (dx, dy) = (x1 - x0, y1 - y0);
        let steep = dy.abs() > dx.abs();
        let (a0, a1, extent) = if steep { (y0, y1, h) } else { (x0, x1, w) };
        let lo = a0.min(a1).max(0.0);
        let hi = a0.max(a1).min(extent);
        if lo > hi {
            return;
        }
        for a in lo as i64..=hi as i64 {
            let a = a as f64;
            let (x, y) = if steep {
                (
                    if dy == 0.0 {
                        x0
                    } else {
                        x0 + (a - y0) * dx / dy
                    },
                    a,
                )
            } else {
                (
                    a,
                    if dx == 0.0 {
                        y0
                    } else {
                        y0 + (a - x0) * dy / dx
                    },
                )
            };
            self.hline(x.round() as i64, x.round() as i64, y.round() as i64, color);
        }
    }

    /// Mirrors the rows (pygame's `transform.flip(surf, False, True)`): Gymnasium draws with
    /// y pointing up, then flips.
    pub fn flip_vertical(&mut self) {
        let stride = self.width * 3;
        for y in 0..self.height / 2 {
            let (upper, lower) = self.data.split_at_mut((self.height - 1 - y) * stride);
            upper[y * stride..(y + 1) * stride].swap_with_slice(&mut lower[..stride]);
        }
    }
}

/// An environment that can draw its current state (Gymnasium's `render()` with
/// `render_mode="rgb_array"`).
pub trait Render {
    /// `(width, height)` of the frames, in pixels.
    fn render_size(&self) -> (usize, usize);

    /// Frames per second of real time (Gymnasium's `metadata["render_fps"]`).
    fn render_fps(&self) -> u32;

    /// Every color [`Render::render_rgb`] draws; no other color ever appears in a frame.
    fn palette(&self) -> &'static [Rgb];

    /// Draws the current state into `frame`, resizing it to [`Render::render_size`] first (no
    /// allocation once the frame has that size). Errors when the state cannot be drawn (NaN).
    fn render_rgb(&self, frame: &mut Frame) -> Result<()>;

    /// Draws the current state into a new frame.
    fn render(&self) -> Result<Frame> {
        let mut frame = Frame::default();
        self.render_rgb(&mut frame)?;
        Ok(frame)
    }
}

macro_rules! render_through_wrapper {
    ($($wrapper:ident),*) => {$(
        /// Renders the wrapped environment.
        impl<E: Env + Render> Render for $wrapper<E> {
            fn render_size(&self) -> (usize, usize) {
                self.inner().render_size()
            }
            fn render_fps(&self) -> u32 {
                self.inner().render_fps()
            }
            fn palette(&self) -> &'static [Rgb] {
                self.inner().palette()
            }
            fn render_rgb(&self, frame: &mut Frame) -> Result<()> {
                self.inner().render_rgb(frame)
            }
        }
    )*};
}

render_through_wrapper!(
    TimeLimit,
    RecordEpisodeStatistics,
    Monitor,
    NormalizeObservation,
    NormalizeReward,
    ClipAction
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_new_resize_and_overflow() {
        let f = Frame::new(3, 2).unwrap();
        assert_eq!((f.width(), f.height(), f.data().len()), (3, 2, 18));
        assert!(Frame::new(usize::MAX, 2).is_err());
        assert_eq!(f.pixel(3, 0), None);
        assert_eq!(f.pixel(0, 2), None);
    }

    #[test]
    fn primitives_clip_instead_of_panicking() {
        let mut f = Frame::new(10, 8).unwrap();
        f.fill(WHITE);
        f.fill_rect(-100, -100, 2, 1, BLACK);
        f.hline(i64::MIN, i64::MAX, 7, BLACK);
        f.fill_circle(i64::MAX, 0, i64::MAX, BLACK);
        f.fill_convex_polygon(&[[-1e300, -1e300], [1e300, -1e300], [0.0, 1e300]], BLACK);
        f.fill_convex_polygon(&[[f64::NAN, 0.0], [5.0, 5.0], [0.0, 5.0]], WHITE);
        assert!(
            f.data().iter().all(|&c| c == 0),
            "everything painted black, NaN drew nothing"
        );
    }

    #[test]
    fn rect_circle_and_polygon_cover_the_expected_pixels() {
        let mut f = Frame::new(20, 20).unwrap();
        f.fill(WHITE);
        f.fill_rect(2, 3, 4, 5, BLACK);
        let black = |f: &Frame| {
            (0..20)
                .flat_map(|y| (0..20).map(move |x| (x, y)))
                .filter(|&(x, y)| f.pixel(x, y) == Some(BLACK))
                .count()
        };
        assert_eq!(black(&f), 9);
        assert_eq!(f.pixel(2, 3), Some(BLACK));
        assert_eq!(f.pixel(5, 5), Some(WHITE));

        f.fill(WHITE);
        f.fill_circle(10, 10, 2, BLACK);
        // dx² + dy² <= 4: 1 + 3 + 5 + 3 + 1 pixels.
        assert_eq!(black(&f), 13);

        f.fill(WHITE);
        // A right triangle with legs of 4 pixels: rows 0..=4 of lengths 5, 4, 3, 2, 1.
        f.fill_convex_polygon(&[[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], BLACK);
        assert_eq!(black(&f), 15);
        assert_eq!(f.pixel(4, 0), Some(BLACK));
        assert_eq!(f.pixel(1, 4), Some(WHITE));
    }

    #[test]
    fn line_is_connected_and_clipped() {
        let mut f = Frame::new(10, 10).unwrap();
        f.fill(WHITE);
        f.line([1.0, 1.0], [8.0, 4.0], BLACK);
        // One pixel per column from x = 1 to 8, endpoints included.
        for x in 1..=8 {
            let n = (0..10).filter(|&y| f.pixel(x, y) == Some(BLACK)).count();
            assert_eq!(n, 1, "column {x}");
        }
        assert_eq!(f.pixel(1, 1), Some(BLACK));
        assert_eq!(f.pixel(8, 4), Some(BLACK));
        f.fill(WHITE);
        f.line([-1e200, 5.0], [1e200, 5.0], BLACK);
        assert!((0..10).all(|x| f.pixel(x, 5) == Some(BLACK)));
        f.line([-5.0, -5.0], [-1.0, 20.0], [1, 2, 3]);
        f.line([f64::NAN, 0.0], [3.0, 3.0], [1, 2, 3]);
        assert!(f.data().iter().all(|&c| c == 0 || c == 255));
    }

    #[test]
    fn flip_vertical_mirrors_rows() {
        let mut f = Frame::new(2, 3).unwrap();
        f.fill(WHITE);
        f.hline(0, 1, 0, BLACK);
        f.flip_vertical();
        assert_eq!(f.pixel(0, 2), Some(BLACK));
        assert_eq!(f.pixel(1, 0), Some(WHITE));
        assert_eq!(f.pixel(1, 1), Some(WHITE));
    }
}
