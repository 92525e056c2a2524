//! The classic-control pictures, after Gymnasium's `render()` methods.

use super::{Frame, Render, Rgb, BLACK, WHITE};
use crate::classic_control::{Acrobot, CartPole, MountainCar, MountainCarContinuous};
use crate::error::{EnvError, Result};

/// Pole color of Gymnasium's CartPole.
pub const CARTPOLE_POLE: Rgb = [202, 152, 101];
/// Axle color of Gymnasium's CartPole.
pub const CARTPOLE_AXLE: Rgb = [129, 132, 203];

const CARTPOLE_PALETTE: [Rgb; 4] = [WHITE, BLACK, CARTPOLE_POLE, CARTPOLE_AXLE];

/// Gymnasium's CartPole picture: 600 x 400 pixels, `2 * x_threshold` (4.8) metres across, the
/// 50 x 30 px cart centered 100 px above the bottom on a black track, a 10 px wide pole of
/// length `2 * length` (1 m) pivoting on a 5 px axle.
impl Render for CartPole {
    fn render_size(&self) -> (usize, usize) {
        (600, 400)
    }

    fn render_fps(&self) -> u32 {
        50
    }

    fn palette(&self) -> &'static [Rgb] {
        &CARTPOLE_PALETTE
    }

    fn render_rgb(&self, frame: &mut Frame) -> Result<()> {
        // CartPole's x_threshold and half pole length, as Gymnasium's render reads them.
        const X_THRESHOLD: f64 = 2.4;
        const LENGTH: f64 = 0.5;
        const POLE_WIDTH: f64 = 10.0;
        const CART_WIDTH: f64 = 50.0;
        const CART_HEIGHT: f64 = 30.0;
        const CART_Y: f64 = 100.0;

        let [x, _, theta, _] = self.state();
        if !x.is_finite() || !theta.is_finite() {
            return Err(EnvError::InvalidArgument(format!(
                "cannot render CartPole with cart position {x} and pole angle {theta}"
            )));
        }
        let (width, height) = self.render_size();
        frame.resize(width, height)?;
        frame.fill(WHITE);

        let scale = width as f64 / (X_THRESHOLD * 2.0);
        let pole_len = scale * (2.0 * LENGTH);
        let cart_x = x * scale + width as f64 / 2.0;
        let axle_y = CART_Y + CART_HEIGHT / 4.0;

        // Drawn with y up (pygame's coordinates before Gymnasium's flip).
        let (l, r) = (cart_x - CART_WIDTH / 2.0, cart_x + CART_WIDTH / 2.0);
        let (b, t) = (CART_Y - CART_HEIGHT / 2.0, CART_Y + CART_HEIGHT / 2.0);
        frame.fill_convex_polygon(&[[l, b], [l, t], [r, t], [r, b]], BLACK);

        // The pole leans right for positive theta: rotate its outline by -theta about the axle.
        let (sin, cos) = theta.sin_cos();
        let half = POLE_WIDTH / 2.0;
        let pole = [
            [-half, -half],
            [-half, pole_len - half],
            [half, pole_len - half],
            [half, -half],
        ]
        .map(|[px, py]| [px * cos + py * sin + cart_x, -px * sin + py * cos + axle_y]);
        frame.fill_convex_polygon(&pole, CARTPOLE_POLE);

        // Python's int() truncates toward zero.
        let radius = half.trunc() as i64;
        frame.fill_circle(
            cart_x.trunc() as i64,
            axle_y.trunc() as i64,
            radius,
            CARTPOLE_AXLE,
        );
        frame.hline(0, width as i64, CART_Y as i64, BLACK);
        frame.flip_vertical();
        Ok(())
    }
}

/// Link color of Gymnasium's Acrobot.
pub const ACROBOT_LINK: Rgb = [0, 204, 204];
/// Joint color of Gymnasium's Acrobot.
pub const ACROBOT_JOINT: Rgb = [204, 204, 0];

const ACROBOT_PALETTE: [Rgb; 4] = [WHITE, BLACK, ACROBOT_LINK, ACROBOT_JOINT];

/// Gymnasium's Acrobot picture: 500 x 500 pixels, 4.4 m across, the fixed joint in the middle,
/// two links 1 m long and 0.2 m thick, and the black target line 1 m above the fixed joint.
impl Render for Acrobot {
    fn render_size(&self) -> (usize, usize) {
        (500, 500)
    }

    fn render_fps(&self) -> u32 {
        15
    }

    fn palette(&self) -> &'static [Rgb] {
        &ACROBOT_PALETTE
    }

    fn render_rgb(&self, frame: &mut Frame) -> Result<()> {
        const LINK_LENGTH: f64 = 1.0;
        const BOUND: f64 = 2.0 * LINK_LENGTH + 0.2;

        let [theta1, theta2, _, _] = self.state();
        if !theta1.is_finite() || !theta2.is_finite() {
            return Err(EnvError::InvalidArgument(format!(
                "cannot render Acrobot with joint angles {theta1} and {theta2}"
            )));
        }
        let (size, _) = self.render_size();
        frame.resize(size, size)?;
        frame.fill(WHITE);
        let scale = size as f64 / (BOUND * 2.0);
        let offset = size as f64 / 2.0;

        // y up, angles from straight down (Gymnasium swaps its (x, y) pairs to get this).
        let p1 = [
            theta1.sin() * LINK_LENGTH * scale,
            -theta1.cos() * LINK_LENGTH * scale,
        ];
        frame.hline(
            (-BOUND * scale + offset).trunc() as i64,
            (BOUND * scale + offset).trunc() as i64,
            (LINK_LENGTH * scale + offset).trunc() as i64,
            BLACK,
        );
        let half = 0.1 * scale;
        let links = [([0.0, 0.0], theta1), (p1, theta1 + theta2)];
        for ([x, y], angle) in links {
            let (x, y) = (x + offset, y + offset);
            let (sin, cos) = (angle - std::f64::consts::FRAC_PI_2).sin_cos();
            let outline = [
                [0.0, -half],
                [0.0, half],
                [LINK_LENGTH * scale, half],
                [LINK_LENGTH * scale, -half],
            ]
            .map(|[px, py]| [px * cos - py * sin + x, px * sin + py * cos + y]);
            frame.fill_convex_polygon(&outline, ACROBOT_LINK);
            frame.fill_circle(
                x.trunc() as i64,
                y.trunc() as i64,
                half.trunc() as i64,
                ACROBOT_JOINT,
            );
        }
        frame.flip_vertical();
        Ok(())
    }
}

/// Color of the car's wheels in Gymnasium's MountainCar.
pub const MOUNTAIN_CAR_WHEEL: Rgb = [128, 128, 128];
/// Color of the goal flag in Gymnasium's MountainCar.
pub const MOUNTAIN_CAR_FLAG: Rgb = [204, 204, 0];

const MOUNTAIN_CAR_PALETTE: [Rgb; 4] = [WHITE, BLACK, MOUNTAIN_CAR_WHEEL, MOUNTAIN_CAR_FLAG];

/// Gymnasium's MountainCar picture (both versions): 600 x 400 pixels spanning positions
/// `[-1.2, 0.6]`, the hill `0.45 sin(3x) + 0.55` as a 100-point polyline, a 40 x 20 px car
/// tilted by `cos(3x)` radians (sic), two wheels and the flag at the goal position.
fn draw_mountain_car(frame: &mut Frame, position: f64, goal: f64, env: &str) -> Result<()> {
    const MIN_POSITION: f64 = -1.2;
    const MAX_POSITION: f64 = 0.6;
    const CAR_WIDTH: f64 = 40.0;
    const CAR_HEIGHT: f64 = 20.0;
    const CLEARANCE: f64 = 10.0;
    const CURVE_POINTS: usize = 100;

    if !position.is_finite() {
        return Err(EnvError::InvalidArgument(format!(
            "cannot render {env} with car position {position}"
        )));
    }
    frame.resize(600, 400)?;
    frame.fill(WHITE);
    let hill = |x: f64| (3.0 * x).sin() * 0.45 + 0.55;
    let scale = frame.width() as f64 / (MAX_POSITION - MIN_POSITION);

    // As numpy's linspace: start + i * step, the last point exactly the end.
    let step = (MAX_POSITION - MIN_POSITION) / (CURVE_POINTS - 1) as f64;
    let point = |i: usize| {
        let x = if i == CURVE_POINTS - 1 {
            MAX_POSITION
        } else {
            MIN_POSITION + i as f64 * step
        };
        [(x - MIN_POSITION) * scale, hill(x) * scale]
    };
    for i in 1..CURVE_POINTS {
        frame.line(point(i - 1), point(i), BLACK);
    }

    let (sin, cos) = (3.0 * position).cos().sin_cos();
    let base = [
        (position - MIN_POSITION) * scale,
        CLEARANCE + hill(position) * scale,
    ];
    let place = |[px, py]: [f64; 2]| [px * cos - py * sin + base[0], px * sin + py * cos + base[1]];
    let (l, r) = (-CAR_WIDTH / 2.0, CAR_WIDTH / 2.0);
    frame.fill_convex_polygon(
        &[[l, 0.0], [l, CAR_HEIGHT], [r, CAR_HEIGHT], [r, 0.0]].map(place),
        BLACK,
    );
    for wheel in [[CAR_WIDTH / 4.0, 0.0], [-CAR_WIDTH / 4.0, 0.0]].map(place) {
        let radius = (CAR_HEIGHT / 2.5).trunc() as i64;
        frame.fill_circle(
            wheel[0].trunc() as i64,
            wheel[1].trunc() as i64,
            radius,
            MOUNTAIN_CAR_WHEEL,
        );
    }

    let flag_x = ((goal - MIN_POSITION) * scale).trunc();
    let flag_y1 = (hill(goal) * scale).trunc();
    let flag_y2 = flag_y1 + 50.0;
    frame.fill_rect(
        flag_x as i64,
        flag_y1 as i64,
        flag_x as i64,
        flag_y2 as i64,
        BLACK,
    );
    frame.fill_convex_polygon(
        &[
            [flag_x, flag_y2],
            [flag_x, flag_y2 - 10.0],
            [flag_x + 25.0, flag_y2 - 5.0],
        ],
        MOUNTAIN_CAR_FLAG,
    );
    frame.flip_vertical();
    Ok(())
}

impl Render for MountainCar {
    fn render_size(&self) -> (usize, usize) {
        (600, 400)
    }

    fn render_fps(&self) -> u32 {
        30
    }

    fn palette(&self) -> &'static [Rgb] {
        &MOUNTAIN_CAR_PALETTE
    }

    fn render_rgb(&self, frame: &mut Frame) -> Result<()> {
        draw_mountain_car(frame, self.state()[0], 0.5, "MountainCar")
    }
}

impl Render for MountainCarContinuous {
    fn render_size(&self) -> (usize, usize) {
        (600, 400)
    }

    fn render_fps(&self) -> u32 {
        30
    }

    fn palette(&self) -> &'static [Rgb] {
        &MOUNTAIN_CAR_PALETTE
    }

    fn render_rgb(&self, frame: &mut Frame) -> Result<()> {
        draw_mountain_car(frame, self.state()[0], 0.45, "MountainCarContinuous")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::{RecordEpisodeStatistics, TimeLimit};

    fn cartpole_at(x: f64, theta: f64) -> CartPole {
        let mut env = CartPole::new();
        env.set_state([x, 0.0, theta, 0.0]);
        env
    }

    /// Row of a 400-pixel-high frame for Gymnasium's y-up coordinate `y`.
    fn row(y: f64) -> usize {
        row_of(400, y)
    }

    /// Row of a `height`-pixel-high frame for Gymnasium's y-up coordinate `y` (pygame draws
    /// with y up, then flips).
    fn row_of(height: usize, y: f64) -> usize {
        height - 1 - y.floor() as usize
    }

    fn assert_palette_only(frame: &Frame, palette: &[Rgb]) {
        for px in frame.data().chunks_exact(3) {
            assert!(
                palette.contains(&[px[0], px[1], px[2]]),
                "color {px:?} outside the palette"
            );
        }
    }

    #[test]
    fn cartpole_frame_size_background_and_palette() {
        let frame = cartpole_at(0.0, 0.0).render().unwrap();
        assert_eq!((frame.width(), frame.height()), (600, 400));
        assert_eq!(frame.data().len(), 600 * 400 * 3);
        for (x, y) in [(0, 0), (599, 0), (0, 399), (599, 399), (100, 200)] {
            assert_eq!(frame.pixel(x, y), Some(WHITE), "background at ({x}, {y})");
        }
        assert_palette_only(&frame, &CARTPOLE_PALETTE);
        // The track: row 100 from the bottom, across the whole width.
        assert!((0..600).all(|x| frame.pixel(x, row(100.0)) == Some(BLACK)));
        assert_eq!(frame.pixel(10, row(101.0)), Some(WHITE));
    }
    #[test]
    fn cartpole_cart_is_black_where_gymnasium_puts_it() {
        // x = 1.0 m is 125 px right of the center; the cart spans 50 x 30 px around y = 100.
        let frame = cartpole_at(1.0, 0.0).render().unwrap();
        let cx = 425;
        for (x, y) in [
            (cx - 24, 86.0),
            (cx + 24, 114.0),
            (cx - 20, 90.0),
            (cx + 20, 90.0),
        ] {
            assert_eq!(frame.pixel(x, row(y)), Some(BLACK), "cart at ({x}, {y})");
        }
        for (x, y) in [
            (cx - 27, 90.0),
            (cx + 27, 90.0),
            (cx - 20, 117.0),
            (cx - 20, 83.0),
        ] {
            assert_eq!(
                frame.pixel(x, row(y)),
                Some(WHITE),
                "outside the cart at ({x}, {y})"
            );
        }
        // The axle, a disc of radius 5 at (cart_x, 107), sits on the cart and the pole's foot.
        assert_eq!(frame.pixel(cx, row(107.0)), Some(CARTPOLE_AXLE));
        assert_eq!(frame.pixel(cx + 4, row(107.0)), Some(CARTPOLE_AXLE));
        // The upright pole: 10 px wide, from the axle up to 107.5 + 120.
        assert_eq!(frame.pixel(cx, row(200.0)), Some(CARTPOLE_POLE));
        assert_eq!(frame.pixel(cx + 4, row(226.0)), Some(CARTPOLE_POLE));
        assert_eq!(frame.pixel(cx, row(229.0)), Some(WHITE));
        assert_eq!(frame.pixel(cx + 7, row(200.0)), Some(WHITE));
    }
    #[test]
    fn cartpole_pole_rotates_with_theta() {
        let theta = 0.2f64;
        let along = 100.0; // pixels from the axle along the pole's axis
        let (sin, cos) = theta.sin_cos();
        let y = row(107.5 + along * cos);
        let right = (300.0 + along * sin).round() as usize;
        let left = (300.0 - along * sin).round() as usize;

        let leaning_right = cartpole_at(0.0, theta).render().unwrap();
        assert_eq!(leaning_right.pixel(right, y), Some(CARTPOLE_POLE));
        assert_eq!(leaning_right.pixel(left, y), Some(WHITE));
        assert_eq!(leaning_right.pixel(300, y), Some(WHITE));

        let leaning_left = cartpole_at(0.0, -theta).render().unwrap();
        assert_eq!(leaning_left.pixel(left, y), Some(CARTPOLE_POLE));
        assert_eq!(leaning_left.pixel(right, y), Some(WHITE));
    }
    #[test]
    fn cartpole_renders_through_wrappers_and_reuses_the_frame() {
        let env =
            TimeLimit::new(RecordEpisodeStatistics::new(cartpole_at(-0.5, 0.1)), 500).unwrap();
        let mut frame = Frame::new(1, 1).unwrap();
        env.render_rgb(&mut frame).unwrap();
        assert_eq!(frame, cartpole_at(-0.5, 0.1).render().unwrap());
        assert_eq!(env.render_fps(), 50);
    }
    #[test]
    fn cartpole_far_off_screen_still_renders() {
        let frame = cartpole_at(1e12, -3.0).render().unwrap();
        assert_eq!(frame.pixel(300, 0), Some(WHITE));
        assert_eq!(frame.pixel(300, row(100.0)), Some(BLACK));
    }
    #[test]
    fn cartpole_nan_state_is_an_error() {
        let err = cartpole_at(f64::NAN, 0.0).render().unwrap_err();
        assert!(err.to_string().contains("cannot render CartPole"), "{err}");
    }

    fn acrobot_at(theta1: f64, theta2: f64) -> Frame {
        let mut env = Acrobot::new();
        env.set_state([theta1, theta2, 0.0, 0.0]);
        env.render().unwrap()
    }

    #[test]
    fn acrobot_hanging_down_and_swung_right() {
        let row = |y| row_of(500, y);
        let down = acrobot_at(0.0, 0.0);
        assert_eq!((down.width(), down.height()), (500, 500));
        assert_palette_only(&down, &ACROBOT_PALETTE);
        // The fixed joint at the center; both links straight down (113.6 px each).
        assert_eq!(down.pixel(250, row(250.0)), Some(ACROBOT_JOINT));
        assert_eq!(down.pixel(250, row(200.0)), Some(ACROBOT_LINK));
        assert_eq!(down.pixel(250, row(136.0)), Some(ACROBOT_JOINT));
        assert_eq!(down.pixel(250, row(60.0)), Some(ACROBOT_LINK));
        assert_eq!(down.pixel(250, row(300.0)), Some(WHITE));
        assert_eq!(down.pixel(270, row(200.0)), Some(WHITE));
        // The target line, 1 m above the fixed joint.
        assert!((0..500).all(|x| down.pixel(x, row(363.0)) == Some(BLACK)));

        // theta1 = pi/2 swings the first link to the right, horizontal; theta2 = pi/2 then
        // turns the second one up.
        let swung = acrobot_at(std::f64::consts::FRAC_PI_2, std::f64::consts::FRAC_PI_2);
        assert_eq!(swung.pixel(310, row(250.0)), Some(ACROBOT_LINK));
        assert_eq!(swung.pixel(250, row(200.0)), Some(WHITE));
        assert_eq!(swung.pixel(363, row(320.0)), Some(ACROBOT_LINK));
        assert!(Acrobot::new().render().is_ok());
        let mut nan = Acrobot::new();
        nan.set_state([f64::NAN, 0.0, 0.0, 0.0]);
        assert!(nan.render().is_err());
    }

    #[test]
    fn mountain_car_hill_car_and_flag() {
        let mut env = MountainCar::new();
        env.set_state([-0.5, 0.0]);
        let frame = env.render().unwrap();
        assert_eq!((frame.width(), frame.height()), (600, 400));
        assert_palette_only(&frame, &MOUNTAIN_CAR_PALETTE);
        let scale = 600.0 / 1.8;
        let hill = |x: f64| (3.0 * x).sin() * 0.45 + 0.55;
        // The hill's left end, and a point on it where no car is.
        assert_eq!(frame.pixel(0, row(hill(-1.2) * scale)), Some(BLACK));
        // The car body, 10 px above the hill and 10 px up into the car.
        let car_x = (0.7 * scale) as usize;
        assert_eq!(
            frame.pixel(car_x, row(hill(-0.5) * scale + 20.0)),
            Some(BLACK)
        );
        assert_eq!(
            frame.pixel(car_x, row(hill(-0.5) * scale + 40.0)),
            Some(WHITE)
        );
        // The flag at x = 0.5: pole black, cloth yellow.
        let flag_x = (1.7f64 * scale).trunc();
        let flag_y1 = (hill(0.5) * scale).trunc();
        assert_eq!(
            frame.pixel(flag_x as usize, row(flag_y1 + 20.0)),
            Some(BLACK)
        );
        assert_eq!(
            frame.pixel(flag_x as usize + 5, row(flag_y1 + 45.0)),
            Some(MOUNTAIN_CAR_FLAG)
        );

        // The continuous version's goal is at 0.45: its flag stands further left.
        let mut cont = MountainCarContinuous::new();
        cont.set_state([-0.5, 0.0]);
        let cont_frame = cont.render().unwrap();
        assert_eq!(
            cont_frame.pixel(flag_x as usize + 5, row(flag_y1 + 45.0)),
            Some(WHITE)
        );
        let cont_flag_x = (1.65f64 * scale).trunc() as usize;
        let cont_y1 = (hill(0.45) * scale).trunc();
        assert_eq!(
            cont_frame.pixel(cont_flag_x + 5, row(cont_y1 + 45.0)),
            Some(MOUNTAIN_CAR_FLAG)
        );
        env.set_state([f64::INFINITY, 0.0]);
        assert!(env.render().is_err());
    }
}
