//! [`ProgressBarCallback`]: a progress bar over the training timesteps (SB3's
//! `ProgressBarCallback`, drawn with `indicatif` instead of `tqdm`/`rich`).

use super::{Callback, Locals};
use crate::error::Result;
use crate::logger::Logger;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

const TEMPLATE: &str =
    "{wide_bar} {human_pos}/{human_len} [{elapsed_precise} < {eta_precise}, {per_sec}]";
const NO_LENGTH_TEMPLATE: &str = "{spinner} {human_pos} steps [{elapsed_precise}, {per_sec}]";

/// Shows the number of timesteps done out of `Locals::total_timesteps` (a counter without a
/// bar when the total is 0, i.e. when training is budgeted in episodes).
///
/// The bar is drawn on stdout only when stdout is a terminal (at most about 20 redraws a
/// second); otherwise it is hidden entirely, so logs and CI output get no progress lines.
#[derive(Debug, Default)]
pub struct ProgressBarCallback {
    bar: Option<ProgressBar>,
    force_hidden: bool,
}

impl ProgressBarCallback {
    /// A progress bar drawn when stdout is a terminal.
    pub fn new() -> Self {
        ProgressBarCallback::default()
    }

    /// A progress bar that is never drawn, even on a terminal (tests, benchmarks).
    pub fn hidden() -> Self {
        ProgressBarCallback {
            bar: None,
            force_hidden: true,
        }
    }

    /// The position the bar shows (0 before training starts).
    pub fn position(&self) -> u64 {
        self.bar.as_ref().map_or(0, ProgressBar::position)
    }
}

impl Callback for ProgressBarCallback {
    fn on_training_start(&mut self, locals: &Locals<'_>, _logger: &mut Logger) -> Result<()> {
        let target = if !self.force_hidden && std::io::stdout().is_terminal() {
            ProgressDrawTarget::stdout()
        } else {
            ProgressDrawTarget::hidden()
        };
        let (bar, template) = if locals.total_timesteps > 0 {
            (ProgressBar::new(locals.total_timesteps), TEMPLATE)
        } else {
            (ProgressBar::no_length(), NO_LENGTH_TEMPLATE)
        };
        bar.set_draw_target(target);
        // The templates are constants; should one not parse, the default style is still fine.
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_position(locals.num_timesteps);
        self.bar = Some(bar);
        Ok(())
    }

    fn on_step(&mut self, locals: &Locals<'_>, _logger: &mut Logger) -> Result<bool> {
        if let Some(bar) = &self.bar {
            bar.set_position(locals.num_timesteps);
        }
        Ok(true)
    }

    fn on_training_end(&mut self, locals: &Locals<'_>, _logger: &mut Logger) -> Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.set_position(locals.num_timesteps);
            // `finish` would jump to the full length; training may have stopped early.
            bar.abandon();
            if !bar.is_hidden() {
                // indicatif leaves the cursor on the bar's line: the next output starts below it.
                println!();
            }
        }
        Ok(())
    }
}
