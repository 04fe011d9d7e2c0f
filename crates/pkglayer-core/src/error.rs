//! Errors a user can act on.
//!
//! Most failures travel as `anyhow::Error` with context. Where we know what the user should do next,
//! the error carries a [`UserError`] with a hint; the binary finds it anywhere in the chain and prints
//! `error: …` followed by `hint: …`.

use std::fmt;

/// A failure with a known remedy, e.g. a path that is not a sysroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
}

impl UserError {
    pub fn new(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// The hint of the first [`UserError`] in an error chain, if any.
pub fn hint_of(err: &anyhow::Error) -> Option<&str> {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<UserError>())
        .and_then(|user| user.hint.as_deref())
}
