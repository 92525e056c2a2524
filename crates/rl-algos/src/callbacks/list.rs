//! [`CallbackList`]: several callbacks called in order (SB3's `CallbackList`).

use super::{Callback, Locals};
use crate::error::Result;
use crate::logger::Logger;

/// Calls each of its callbacks in order. Training continues only if every `on_step` says so;
/// like SB3, every callback's `on_step` is called even after one asked to stop.
///
/// Push `&mut callback` to keep ownership of a callback and read its state after training.
#[derive(Default)]
pub struct CallbackList<'a> {
    callbacks: Vec<Box<dyn Callback + 'a>>,
}

impl<'a> CallbackList<'a> {
    /// An empty list.
    pub fn new() -> Self {
        CallbackList {
            callbacks: Vec::new(),
        }
    }

    /// Appends a callback (called after the ones already in the list).
    pub fn push(&mut self, callback: impl Callback + 'a) -> &mut Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// Builder form of [`CallbackList::push`].
    pub fn with(mut self, callback: impl Callback + 'a) -> Self {
        self.push(callback);
        self
    }

    /// Number of callbacks.
    pub fn len(&self) -> usize {
        self.callbacks.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.callbacks.is_empty()
    }
}

impl Callback for CallbackList<'_> {
    fn on_training_start(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<()> {
        for c in &mut self.callbacks {
            c.on_training_start(locals, logger)?;
        }
        Ok(())
    }

    fn on_step(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<bool> {
        let mut continue_training = true;
        for c in &mut self.callbacks {
            continue_training &= c.on_step(locals, logger)?;
        }
        Ok(continue_training)
    }

    fn on_rollout_end(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<()> {
        for c in &mut self.callbacks {
            c.on_rollout_end(locals, logger)?;
        }
        Ok(())
    }

    fn on_training_end(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<()> {
        for c in &mut self.callbacks {
            c.on_training_end(locals, logger)?;
        }
        Ok(())
    }
}
