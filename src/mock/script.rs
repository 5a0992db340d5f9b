//! What the mock server was told to answer, per model and per presented key,
//! and what it received.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::call::ServerCall;
use super::random::RandomReplies;
use super::reply::ServerReply;

/// The server's shared state.
#[derive(Clone, Default)]
pub(super) struct Shared(Arc<Mutex<State>>);

#[derive(Default)]
pub(super) struct State {
    pub(super) queued: HashMap<String, VecDeque<ServerReply>>,
    pub(super) always: HashMap<String, ServerReply>,
    pub(super) random: HashMap<String, RandomReplies>,
    /// Keyed by (model, API key).
    pub(super) keyed_queued: HashMap<(String, String), VecDeque<ServerReply>>,
    pub(super) keyed_always: HashMap<(String, String), ServerReply>,
    pub(super) calls: Vec<ServerCall>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `call` and picks its reply: the presented key's script for
    /// the model first, then the model's (queued, drawn at random, always).
    pub(super) fn take(&self, call: ServerCall) -> ServerReply {
        let mut state = self.lock();
        let model = call.model.clone();
        let keyed = call.api_key().map(|key| (model.clone(), key.to_owned()));
        state.calls.push(call);
        if let Some(keyed) = keyed {
            let reply = state
                .keyed_queued
                .get_mut(&keyed)
                .and_then(VecDeque::pop_front)
                .or_else(|| state.keyed_always.get(&keyed).cloned());
            if let Some(reply) = reply {
                return reply;
            }
        }
        state
            .queued
            .get_mut(&model)
            .and_then(VecDeque::pop_front)
            .or_else(|| state.random.get(&model).and_then(RandomReplies::draw))
            .or_else(|| state.always.get(&model).cloned())
            .unwrap_or_else(|| ServerReply::text(format!("ok from {model}")))
    }
}
