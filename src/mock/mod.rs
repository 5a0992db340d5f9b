//! Scripted stand-ins for providers, for tests (yours too): an in-process
//! [`MockProvider`] service, and a [`MockServer`] that speaks the OpenAI and
//! Anthropic wire formats over a real socket on `127.0.0.1`.

mod answer;
mod call;
mod provider;
mod random;
mod reply;
mod script;
mod server;
mod wire;

pub use call::ServerCall;
pub use provider::{MockCall, MockProvider, MockReply};
pub use random::RandomReplies;
pub use reply::ServerReply;
pub use server::MockServer;
