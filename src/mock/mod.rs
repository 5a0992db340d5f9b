//! Scripted stand-ins for providers, for tests (yours too): an in-process
//! [`MockProvider`] service.

mod provider;

pub use provider::{MockCall, MockProvider, MockReply};
