//! The core types every layer speaks: the request, the response (complete or
//! streamed), the error and its kinds, and the log of attempts a call made.
//!
//! This module is the bottom of the crate: it imports nothing from the
//! layers, the providers, the config or the server.

pub(crate) mod attempt;
pub(crate) mod collect;
pub(crate) mod error;
pub(crate) mod future;
pub(crate) mod malformed;
pub(crate) mod model;
pub(crate) mod per_model;
pub(crate) mod request;
pub(crate) mod response;
pub mod streaming;
