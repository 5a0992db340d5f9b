//! The client's own JSON for a request, kept so that an OpenAI-compatible
//! provider receives it as sent: only `model` and the prepended messages
//! are written in, and `stream_options` when usage is asked for on the
//! caller's behalf.
//!
//! A request built or changed through the typed API (messages, other
//! fields, `stream`) has no such body: the typed encoding writes it.
//! Only a build with both the server and the OpenAI client keeps and
//! writes such bodies.
#![cfg_attr(not(all(feature = "server", feature = "openai")), allow(dead_code))]

use std::ops::Range;

use bytes::Bytes;

use crate::chat::message::Message;
use crate::chat::walk::{skip_space, string_end, value_end};

/// A request body with the places of the values the gateway may change.
pub(crate) struct RawBody {
    bytes: Bytes,
    /// Just after the object's opening brace.
    open: usize,
    model: Range<usize>,
    messages: Range<usize>,
    has_stream_options: bool,
}

impl RawBody {
    /// Finds `model` and `messages` in `bytes`, a JSON object. `None` when
    /// either is missing or not of its type (a string that is not blank, a
    /// list that is not empty), a key appears twice (the provider might
    /// read the other one), or a key of the object is written with an
    /// escape (left to the slow reading).
    ///
    /// This walks the object's top level without checking the JSON: the
    /// caller keeps the body only if the typed reader then accepts all of
    /// it, and on JSON that reader accepts the walk is exact (a property
    /// test holds it to a full reading). The walk finds string ends with
    /// `memchr`, so it costs a fraction of a reading.
    pub(crate) fn locate(bytes: Bytes) -> Option<Self> {
        let raw: &[u8] = &bytes;
        let open = skip_space(raw, 0);
        if raw.get(open) != Some(&b'{') {
            return None;
        }
        let (mut model, mut messages, mut has_stream_options) = (None, None, false);
        let mut at = skip_space(raw, open + 1);
        loop {
            if raw.get(at) != Some(&b'"') {
                return None;
            }
            let key_end = string_end(raw, at)?;
            let key = raw.get(at + 1..key_end - 1)?;
            if key.contains(&b'\\') {
                return None;
            }
            at = skip_space(raw, key_end);
            if raw.get(at) != Some(&b':') {
                return None;
            }
            let start = skip_space(raw, at + 1);
            let end = value_end(raw, start)?;
            let twice = match key {
                b"model" => model.replace(start..end).is_some(),
                b"messages" => messages.replace(start..end).is_some(),
                b"stream_options" => std::mem::replace(&mut has_stream_options, true),
                _ => false,
            };
            if twice {
                return None;
            }
            at = skip_space(raw, end);
            match raw.get(at)? {
                b',' => at = skip_space(raw, at + 1),
                b'}' => break,
                _ => return None,
            }
        }
        let (model, messages) = (model?, messages?);
        let named = serde_json::from_slice::<String>(raw.get(model.clone())?)
            .is_ok_and(|model| !model.trim().is_empty());
        let listed = raw
            .get(messages.clone())?
            .strip_prefix(b"[")
            .is_some_and(|inside| {
                inside
                    .get(skip_space(inside, 0))
                    .is_some_and(|b| *b != b']')
            });
        if !(named && listed) {
            return None;
        }
        Some(RawBody {
            open: open + 1,
            model,
            messages,
            has_stream_options,
            bytes,
        })
    }

    /// The body as the client sent it.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The body with `model`, the `prepended` messages before the
    /// client's, and `"stream_options":{"include_usage":true}` when
    /// `add_usage`. `None` when that cannot be done here (`add_usage` with
    /// `stream_options` already present: the typed encoding merges it).
    pub(crate) fn write(
        &self,
        model: &str,
        prepended: &[Message],
        add_usage: bool,
    ) -> Option<Result<Vec<u8>, serde_json::Error>> {
        if add_usage && self.has_stream_options {
            return None;
        }
        let mut out = Vec::with_capacity(self.bytes.len() + 64);
        // The edits, in the order they appear in the body.
        let mut edits = [
            (self.open..self.open, Edit::Usage),
            (self.model.clone(), Edit::Model),
            (self.messages.clone(), Edit::Messages),
        ];
        edits.sort_by_key(|(at, _)| at.start);
        let mut from = 0;
        for (at, edit) in edits {
            out.extend_from_slice(self.bytes.get(from..at.start)?);
            let result = match edit {
                Edit::Usage if add_usage => {
                    out.extend_from_slice(br#""stream_options":{"include_usage":true},"#);
                    Ok(())
                }
                Edit::Usage => Ok(()),
                Edit::Model => serde_json::to_writer(&mut out, model),
                Edit::Messages => {
                    let client = self.bytes.get(at.clone())?;
                    self.messages_into(&mut out, client, prepended)
                }
            };
            if let Err(e) = result {
                return Some(Err(e));
            }
            from = at.end;
        }
        out.extend_from_slice(self.bytes.get(from..)?);
        Some(Ok(out))
    }

    /// `client` (the client's messages array) with `prepended` first.
    fn messages_into(
        &self,
        out: &mut Vec<u8>,
        client: &[u8],
        prepended: &[Message],
    ) -> Result<(), serde_json::Error> {
        if prepended.is_empty() {
            out.extend_from_slice(client);
            return Ok(());
        }
        // `[` + prepended + (`,` + the client's inside, when not empty) + `]`.
        let inside = client.get(1..client.len().saturating_sub(1)).unwrap_or(&[]);
        out.push(b'[');
        for (i, message) in prepended.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, message)?;
        }
        if inside.iter().any(|b| !b.is_ascii_whitespace()) {
            out.push(b',');
            out.extend_from_slice(inside);
        }
        out.push(b']');
        Ok(())
    }
}

// The body is the client's conversation: its size only.
impl std::fmt::Debug for RawBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawBody")
            .field("bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum Edit {
    Usage,
    Model,
    Messages,
}

#[cfg(test)]
mod tests {
    use std::ops::Range;
    use std::sync::Arc;

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use crate::chat::{ChatRequest, Message};

    /// A JSON value of a few levels, numbers in several forms.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-z\"\\\\é\n ]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn message() -> impl Strategy<Value = Value> {
        (
            prop::sample::select(vec!["system", "user", "assistant", "developer"]),
            "[a-z\"\\\\é\n ]{0,12}",
            prop::option::of(value()),
        )
            .prop_map(|(role, content, extra)| {
                let mut m = json!({"role": role, "content": content});
                if let Some(extra) = extra {
                    m["x_extra"] = extra;
                }
                m
            })
    }

    /// A request body with its keys in any order, written compactly or not.
    fn body() -> impl Strategy<Value = (String, bool)> {
        (
            "[a-z/é\"][a-z/ é\"]{0,9}",
            prop::collection::vec(message(), 1..4),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "temperature",
                    "top_p",
                    "tools",
                    "stream_options",
                    "zeta",
                    "n",
                ]),
                value(),
                0..4,
            ),
            any::<bool>(),
            any::<bool>(),
            any::<u64>(),
        )
            .prop_map(|(model, messages, extra, stream, pretty, seed)| {
                let mut fields: Vec<(String, Value)> = vec![
                    ("model".into(), Value::from(model)),
                    ("messages".into(), Value::Array(messages)),
                    ("stream".into(), Value::Bool(stream)),
                ];
                fields.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
                // A fixed shuffle from the seed: key order is the client's.
                crate::chat::seeded_shuffle(&mut fields, seed);
                let sep = if pretty { ",\n  " } else { "," };
                let text = fields
                    .iter()
                    .map(|(k, v)| {
                        let v = match pretty {
                            true => serde_json::to_string_pretty(v).unwrap(),
                            false => v.to_string(),
                        };
                        format!("{}:{v}", Value::from(k.as_str()))
                    })
                    .collect::<Vec<_>>()
                    .join(sep);
                (format!(" {{{text}}}"), stream)
            })
    }

    proptest! {
        /// The kept body says exactly what the typed encoding would: the
        /// same JSON, with the model, prepended messages and usage written in.
        #[test]
        fn the_kept_body_says_what_the_typed_encoding_says(
            (text, stream) in body(),
            model in "[a-z/\"é]{1,8}",
            prepend in any::<bool>(),
        ) {
            let mut request = ChatRequest::from_body(bytes::Bytes::from(text.clone())).unwrap().unwrap();
            request.set_model(model);
            if prepend {
                let system: Arc<[Message]> = Arc::from(vec![Message::system("be \"brief\"")]);
                request.set_prepended(Some(system));
            }
            let add_usage = stream && request.extra().get("stream_options").is_none();
            let written = request.raw_body(add_usage).expect("a kept body").unwrap();
            let written: Value = serde_json::from_slice(&written).unwrap();
            let mut typed = serde_json::to_value(&request).unwrap();
            if add_usage {
                typed["stream_options"] = json!({"include_usage": true});
            }
            prop_assert_eq!(written, typed);
        }

        /// A body with `stream_options` of its own is left to the typed
        /// encoding when usage must be asked for.
        #[test]
        fn usage_is_never_written_over_the_clients_stream_options((text, _) in body()) {
            let request = ChatRequest::from_body(bytes::Bytes::from(text)).unwrap().unwrap();
            let has = request.extra().contains_key("stream_options");
            prop_assert_eq!(request.raw_body(true).is_none(), has);
        }
    }

    #[test]
    fn any_typed_change_forgets_the_body() {
        let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        let request = ChatRequest::from_body(bytes::Bytes::from_static(body.as_bytes()))
            .unwrap()
            .unwrap();
        assert!(request.raw_body(false).is_some());
        let changes: [fn(&mut ChatRequest); 3] = [
            |r| r.messages_mut().push(Message::user("more")),
            |r| {
                r.extra_mut().insert("n".into(), json!(2));
            },
            |r| r.set_stream(true),
        ];
        for change in changes {
            let mut changed = request.clone();
            change(&mut changed);
            assert!(changed.raw_body(false).is_none());
        }
        // A new model keeps it (it is written in).
        let mut renamed = request.clone();
        renamed.set_model("other");
        let written: Value =
            serde_json::from_slice(&renamed.raw_body(false).unwrap().unwrap()).unwrap();
        assert_eq!(written["model"], "other");
    }

    /// The places of `model` and `messages` (and whether `stream_options`
    /// is there) as a full serde reading finds them: the reference for the
    /// walk. `None` as `locate` must say it.
    fn located_by_reading(bytes: &[u8]) -> Option<(usize, Range<usize>, Range<usize>, bool)> {
        use serde::Deserialize;
        use serde_json::value::RawValue;
        #[derive(Deserialize)]
        struct Places<'a> {
            #[serde(borrow, default)]
            model: Option<&'a RawValue>,
            #[serde(borrow, default)]
            messages: Option<&'a RawValue>,
            #[serde(default, deserialize_with = "present")]
            stream_options: bool,
        }
        fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
            serde::de::IgnoredAny::deserialize(d).map(|_| true)
        }
        let places: Places<'_> = serde_json::from_slice(bytes).ok()?;
        let span = |value: &RawValue| {
            let start = value.get().as_ptr() as usize - bytes.as_ptr() as usize;
            start..start + value.get().len()
        };
        let (model, messages) = (places.model?, places.messages?);
        let named = serde_json::from_str::<String>(model.get()).is_ok_and(|m| !m.trim().is_empty());
        let listed =
            serde_json::from_str::<Vec<Value>>(messages.get()).is_ok_and(|m| !m.is_empty());
        let open = bytes.iter().position(|b| *b == b'{')? + 1;
        (named && listed).then(|| (open, span(model), span(messages), places.stream_options))
    }

    /// Bodies to walk: well-formed requests, and the same with a key
    /// written twice or escaped, a model that is no name, no messages,
    /// spaces anywhere.
    fn any_body() -> impl Strategy<Value = String> {
        (body(), 0..8usize, any::<u64>()).prop_map(|((text, _), change, seed)| {
            let at = |n: usize| (seed as usize) % n.max(1);
            match change {
                0 => text.replacen("\"model\"", "\"m\\u006fdel\"", 1),
                1 => text.replacen('{', r#"{"model":"again","#, 1),
                2 => text.replacen('{', r#"{"stream_options":null,"#, 1),
                3 => text.replacen("\"model\":", "\"model\":7,\"x\":", 1),
                4 => text.replacen("\"messages\":[", "\"messages\":[],\"x\":[", 1),
                5 => {
                    let mut text = text;
                    let i = at(text.len());
                    if text.is_char_boundary(i) {
                        text.insert_str(i, " \n\t ");
                    }
                    text
                }
                6 => text.replacen("\"model\"", "\"model\" ", 1),
                _ => text,
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// On any body the typed reader accepts, the walk finds what a full
        /// reading finds, or leaves the body to the slow reading when one
        /// of its keys is escaped.
        #[test]
        fn the_walk_finds_what_a_full_reading_finds(text in any_body()) {
            prop_assume!(serde_json::from_str::<ChatRequest>(&text).is_ok());
            let walked = super::RawBody::locate(bytes::Bytes::from(text.clone()))
                .map(|b| (b.open, b.model, b.messages, b.has_stream_options));
            let read = located_by_reading(text.as_bytes());
            if walked.is_none() && read.is_some() {
                prop_assert!(text.contains("\\u"), "{text}");
            } else {
                prop_assert_eq!(walked, read, "{}", text);
            }
        }
    }

    #[test]
    fn a_body_with_a_key_twice_is_not_kept() {
        let body = r#"{"model":"a","model":"b","messages":[{"role":"user","content":"hi"}]}"#;
        assert!(super::RawBody::locate(bytes::Bytes::from_static(body.as_bytes())).is_none());
    }
}
