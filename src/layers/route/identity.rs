//! What the caller saw first of a recovered stream: the chunks of the model
//! that takes over carry it too, so the caller sees one consistent stream.

use serde_json::Value;

use crate::chat::ChatChunk;

const FINGERPRINT: &str = "system_fingerprint";

/// The chunk `id`, `created`, `model` and `system_fingerprint` of the first
/// chunk passed on.
#[derive(Debug)]
pub(super) struct Identity {
    id: String,
    created: u64,
    model: String,
    fingerprint: Option<Value>,
}

impl Identity {
    /// The identity `chunk` shows.
    pub(super) fn of(chunk: &ChatChunk) -> Self {
        Identity {
            id: chunk.id.clone(),
            created: chunk.created,
            model: chunk.model.clone(),
            fingerprint: chunk.extra.get(FINGERPRINT).cloned(),
        }
    }

    /// Makes `chunk` show this identity, whichever model produced it.
    pub(super) fn stamp(&self, chunk: &mut ChatChunk) {
        chunk.id.clone_from(&self.id);
        chunk.created = self.created;
        chunk.model.clone_from(&self.model);
        match &self.fingerprint {
            Some(fingerprint) => {
                chunk
                    .extra
                    .insert(FINGERPRINT.to_owned(), fingerprint.clone());
            }
            None => {
                chunk.extra.remove(FINGERPRINT);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_later_chunk_shows_the_first_chunks_identity() {
        let first: ChatChunk = serde_json::from_value(json!({
            "id": "chatcmpl-a", "created": 1, "model": "azure/gpt-4o-mini",
            "system_fingerprint": "fp_a", "choices": []
        }))
        .unwrap();
        let mut later: ChatChunk = serde_json::from_value(json!({
            "id": "chatcmpl-b", "created": 2, "model": "gpt-4o",
            "system_fingerprint": "fp_b", "service_tier": "default", "choices": []
        }))
        .unwrap();
        Identity::of(&first).stamp(&mut later);
        assert_eq!(
            (later.id.as_str(), later.created, later.model.as_str()),
            ("chatcmpl-a", 1, "azure/gpt-4o-mini")
        );
        assert_eq!(later.extra[FINGERPRINT], "fp_a");
        assert_eq!(later.extra["service_tier"], "default", "other fields kept");

        let mut unmarked = ChatChunk::default();
        unmarked.extra.insert(FINGERPRINT.to_owned(), json!("fp_b"));
        let plain = ChatChunk::default();
        Identity::of(&plain).stamp(&mut unmarked);
        assert!(
            !unmarked.extra.contains_key(FINGERPRINT),
            "none at first, none later"
        );
    }
}
