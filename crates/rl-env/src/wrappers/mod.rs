//! Wrappers that compose around any [`crate::Env`].

mod time_limit;

pub use time_limit::TimeLimit;
