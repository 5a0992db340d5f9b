//! Every byte from a provider or a client is hostile: numbers that would
//! overflow, bodies that never end or end too soon, JSON that is not an
//! answer, providers that never answer, and arbitrary input to the parsers.
//! Faults on the wire are served by the crate's `MockServer` on 127.0.0.1.
#![cfg(all(
    feature = "server",
    feature = "mock",
    feature = "openai",
    feature = "anthropic",
    feature = "toml"
))]

mod bodies;
mod deadlines;
mod props;
mod retry_after;
mod support;
mod tokens;
