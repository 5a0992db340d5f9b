//! What the checks of a stream read of a chunk (content or not, which
//! choices started and finished, usage, out-of-range indexes, an in-band
//! error), read from the chunk's JSON without building the [`ChatChunk`].
//!
//! Building a chunk allocates its id, object, model, every text and the
//! choices' vector, and dropping it frees them again: under callgrind that
//! was most of the decoder, and the decoder was two fifths of a 20-chunk
//! stream served by the gateway, which forwards the provider's bytes and
//! needs none of those values. This reader visits the same JSON with the
//! same types where they decide acceptance (integers, the role, tool calls,
//! usage) and without a copy where they do not (strings are read and
//! checked, not kept), so it accepts exactly the JSON that reads as a
//! [`ChatChunk`]: the property test below holds the two to that, and a
//! layer that needs the typed chunk still gets it
//! ([`StreamEvent::chunk_mut`](super::StreamEvent::chunk_mut)).

// The reader serves the OpenAI stream decoder.
#![cfg_attr(not(feature = "openai"), allow(dead_code))]

use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::chat::chunk::{ChatChunk, Finishes, ToolCallDelta};
use crate::chat::completion::Usage;
use crate::chat::extra_fields::Key;
use crate::chat::limits::{MAX_CHOICES, MAX_TOOL_CALLS};
use crate::chat::message::Role;
use crate::chat::walk::{skip_space, string_end, value_end};

/// An index out of range, the first in the order [`check_indexes`]
/// meets them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadIndex {
    /// A choice index at or above [`MAX_CHOICES`].
    Choice(u32),
    /// A tool-call index at or above [`MAX_TOOL_CALLS`].
    ToolCall(u32),
}

impl BadIndex {
    /// The message [`check_indexes`] gives.
    pub(crate) fn describe(self) -> String {
        match self {
            BadIndex::Choice(i) => format!("choice index {i} is not below {MAX_CHOICES}"),
            BadIndex::ToolCall(i) => format!("tool-call index {i} is not below {MAX_TOOL_CALLS}"),
        }
    }
}

/// What the checks of a stream read of one chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Facts {
    /// Some choice's delta carries text, a tool-call fragment or a refusal.
    pub(crate) content: bool,
    /// The bytes of text of its deltas: content, refusals and tool-call
    /// arguments.
    pub(crate) text_bytes: usize,
    /// The chunk has at least one choice.
    pub(crate) choices: bool,
    /// Its choices (indexes below [`MAX_CHOICES`]) and their finish reasons.
    pub(crate) finishes: Finishes,
    /// The first index out of range.
    pub(crate) bad_index: Option<BadIndex>,
    /// An `error` field that is not null (the last, when repeated).
    pub(crate) error: bool,
}

impl Facts {
    /// The facts of a typed chunk.
    pub(crate) fn of(chunk: &ChatChunk) -> Facts {
        let mut facts = Facts {
            content: chunk.has_content(),
            choices: !chunk.choices.is_empty(),
            error: chunk.extra.get("error").is_some_and(|e| !e.is_null()),
            ..Facts::default()
        };
        facts.finishes.note(chunk);
        let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        for choice in &chunk.choices {
            facts.choice_index(choice.index);
            let delta = &choice.delta;
            let calls = delta.tool_calls.as_deref().unwrap_or_default();
            for call in calls {
                facts.tool_call_index(call.index);
            }
            let text = len(&delta.content)
                .saturating_add(len(&delta.refusal))
                .saturating_add(arguments_len(calls));
            facts.text_bytes = facts.text_bytes.saturating_add(text);
        }
        facts
    }

    fn choice_index(&mut self, index: u32) {
        if index >= MAX_CHOICES && self.bad_index.is_none() {
            self.bad_index = Some(BadIndex::Choice(index));
        }
    }

    fn tool_call_index(&mut self, index: u32) {
        if index >= MAX_TOOL_CALLS && self.bad_index.is_none() {
            self.bad_index = Some(BadIndex::ToolCall(index));
        }
    }
}

/// What is wrong with `chunk`'s indexes, if anything.
pub(crate) fn check_indexes(chunk: &ChatChunk) -> Result<(), String> {
    match Facts::of(chunk).bad_index {
        Some(bad) => Err(bad.describe()),
        None => Ok(()),
    }
}

/// The bytes of the arguments of `calls`.
fn arguments_len(calls: &[ToolCallDelta]) -> usize {
    calls
        .iter()
        .filter_map(|c| c.function.as_ref()?.arguments.as_ref())
        .fold(0, |sum, a| sum.saturating_add(a.len()))
}

/// Reads the facts (and the usage) of the chunk `text` is, or fails where
/// reading it as a [`ChatChunk`] fails.
pub(crate) fn read(text: &str) -> Result<(Facts, Option<Usage>), serde_json::Error> {
    read_object(text, [false; KEYS])
}

/// [`read`], with the known keys `seen` already read (a second one fails).
fn read_object(
    text: &str,
    seen: [bool; KEYS],
) -> Result<(Facts, Option<Usage>), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let read = de.deserialize_map(ChunkVisitor { seen })?;
    de.end()?;
    Ok(read)
}

/// The chunk's known keys, in the order of [`ChunkVisitor`]'s `seen`.
const KEYS: usize = 6;
const ID: usize = 0;
const OBJECT: usize = 1;
const CREATED: usize = 2;
const MODEL: usize = 3;

/// The longest start of a chunk a [`Reader`] remembers.
const MAX_PREFIX: usize = 1024;

/// The most room a [`Reader`] keeps between chunks for the rest of one.
const MAX_SCRATCH: usize = 16 * 1024;

/// Reads the chunks of one stream, skipping the start they share.
///
/// A provider starts every chunk of a stream with the same members (`id`,
/// `object`, `created`, `model`, often `system_fingerprint`): more than
/// half of a text chunk's bytes, and none of them a fact. Once a chunk has
/// read in full, its members up to the first that is not one of those
/// plain fields (`choices`, `usage`, `error`, or a key with escapes) are
/// its prefix. A next chunk that starts with the same bytes and goes on
/// with a member is read as `{` and the rest, with the prefix's known keys
/// already seen (so one repeated in the rest fails, as it does in the
/// whole): the same bytes read the same way, so the whole reads exactly
/// as the prefix did in the chunk before and the rest as it reads here.
/// The property test holds it to reading every chunk in full. A rest that
/// does not read is read again in full, and the full reading decides.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    /// Empty: nothing remembered.
    prefix: String,
    /// The known keys among the prefix's members.
    seen: [bool; KEYS],
    /// `{` and the rest of the chunk being read.
    scratch: String,
}

impl Reader {
    /// [`read`] of `text`, the next chunk of the stream.
    pub(crate) fn read(&mut self, text: &str) -> Result<(Facts, Option<Usage>), serde_json::Error> {
        if let Some(rest) = self.rest(text) {
            if let Some(facts) = plain::read(rest, self.seen) {
                return Ok((facts, None));
            }
            self.scratch.clear();
            self.scratch.push('{');
            self.scratch.push_str(rest);
            let read = read_object(&self.scratch, self.seen);
            if self.scratch.capacity() > MAX_SCRATCH {
                // A stream holds its reader while open: the room a large
                // chunk took is not kept for the small ones after it.
                self.scratch = String::new();
            }
            if let Ok(read) = read {
                return Ok(read);
            }
        }
        let read = read(text)?;
        self.remember(text);
        Ok(read)
    }

    /// `text` after the prefix, when it starts with it and a member follows
    /// (`{` and a bare `}` would read where the whole, ending in a comma,
    /// does not).
    fn rest<'t>(&self, text: &'t str) -> Option<&'t str> {
        if self.prefix.is_empty() {
            return None;
        }
        let rest = text.strip_prefix(self.prefix.as_str())?;
        rest.starts_with('"').then_some(rest)
    }

    /// Remembers the prefix of `text`, a chunk that read in full.
    fn remember(&mut self, text: &str) {
        self.prefix.clear();
        self.seen = [false; KEYS];
        let raw = text.as_bytes();
        let mut at = skip_space(raw, 0);
        if raw.get(at) != Some(&b'{') {
            return;
        }
        at = skip_space(raw, at + 1);
        let mut seen = [false; KEYS];
        let mut prefix = None;
        while raw.get(at) == Some(&b'"') {
            let Some(key_end) = string_end(raw, at) else {
                break;
            };
            let key = raw.get(at + 1..key_end - 1).unwrap_or_default();
            match key {
                b"id" => seen[ID] = true,
                b"object" => seen[OBJECT] = true,
                b"created" => seen[CREATED] = true,
                b"model" => seen[MODEL] = true,
                b"choices" | b"usage" | b"error" => break,
                _ if key.contains(&b'\\') => break,
                _ => {}
            }
            let colon = skip_space(raw, key_end);
            if raw.get(colon) != Some(&b':') {
                break;
            }
            let Some(end) = value_end(raw, skip_space(raw, colon + 1)) else {
                break;
            };
            let comma = skip_space(raw, end);
            if raw.get(comma) != Some(&b',') {
                break;
            }
            at = skip_space(raw, comma + 1);
            if at > MAX_PREFIX {
                break;
            }
            prefix = Some((at, seen));
        }
        if let Some((end, seen)) = prefix {
            if let Some(start) = text.get(..end) {
                self.prefix.push_str(start);
                self.seen = seen;
            }
        }
    }
}

/// The rest of a text chunk in its common shape, read by hand.
///
/// Past the shared start, a provider's text chunk is nearly always the
/// same few members: `choices` with one choice of an `index`, a `delta` of
/// `content` (or `role`, or `refusal`), `logprobs` and `finish_reason`,
/// perhaps `usage: null` or another plain member after it. serde's reader
/// spends about two thousand instructions on those seventy bytes; this one
/// reads them with a few comparisons and a `memchr` per string.
///
/// It accepts only a strict subset of what the full reader accepts, and
/// reads the same facts of it (a property test holds it to that): compact
/// JSON, each known key once, strings without escapes or control
/// characters, indexes as plain integers below 2³², `null`, `true`,
/// `false` or such strings for other members. Anything else (whitespace,
/// an escape, tool calls, usage that is not `null`, a repeated key, a key
/// of the shared start) is `None`, and the full reader decides.
mod plain {
    use super::{Facts, ID, KEYS, MODEL, OBJECT};
    use crate::chat::message::Role;

    /// The facts of `rest` (a chunk after its shared start, whose known
    /// keys are `seen`), or `None` when it is not in the common shape.
    pub(super) fn read(rest: &str, seen: [bool; KEYS]) -> Option<Facts> {
        let mut c = Cursor {
            raw: rest.as_bytes(),
            at: 0,
        };
        let mut facts = Facts::default();
        let mut seen = seen;
        let (mut choices, mut usage) = (false, false);
        loop {
            match c.key()? {
                b"choices" if !choices => {
                    choices = true;
                    c.choices(&mut facts)?;
                }
                b"usage" if !usage => {
                    usage = true;
                    c.literal(b"null")?;
                }
                key @ (b"id" | b"object" | b"model") => {
                    // A plain string, once (the shared start may have it).
                    let at = match key {
                        b"id" => ID,
                        b"object" => OBJECT,
                        _ => MODEL,
                    };
                    if std::mem::replace(&mut seen[at], true) {
                        return None;
                    }
                    c.string()?;
                }
                b"choices" | b"usage" | b"created" | b"error" => return None,
                _ => c.other()?,
            }
            match c.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        // The object ends the text (trailing space is the full reader's).
        (c.at == c.raw.len()).then_some(facts)
    }

    struct Cursor<'t> {
        raw: &'t [u8],
        at: usize,
    }

    impl<'t> Cursor<'t> {
        /// The next byte, taken.
        fn next(&mut self) -> Option<u8> {
            let b = *self.raw.get(self.at)?;
            self.at += 1;
            Some(b)
        }

        fn byte(&mut self, want: u8) -> Option<()> {
            (self.next()? == want).then_some(())
        }

        /// `word` (`null`, `true`, `false`), followed by what ends a value.
        fn literal(&mut self, word: &[u8]) -> Option<()> {
            let end = self.at.checked_add(word.len())?;
            if self.raw.get(self.at..end)? != word {
                return None;
            }
            self.at = end;
            matches!(self.raw.get(end), Some(b',' | b'}' | b']')).then_some(())
        }

        /// A string without escapes or control characters: its bytes.
        fn string(&mut self) -> Option<&'t [u8]> {
            self.byte(b'"')?;
            let start = self.at;
            let len = memchr::memchr2(b'"', b'\\', self.raw.get(start..)?)?;
            let end = start + len;
            if self.raw.get(end) != Some(&b'"') {
                return None;
            }
            let text = self.raw.get(start..end)?;
            if text.iter().any(|b| *b < 0x20) {
                return None;
            }
            self.at = end + 1;
            Some(text)
        }

        /// A key and its colon.
        fn key(&mut self) -> Option<&'t [u8]> {
            let key = self.string()?;
            self.byte(b':')?;
            Some(key)
        }

        /// `null` (`None`) or a plain string (its bytes).
        fn text(&mut self) -> Option<Option<&'t [u8]>> {
            match self.raw.get(self.at)? {
                b'n' => self.literal(b"null").map(|()| None),
                _ => self.string().map(Some),
            }
        }

        /// The value of a member no check reads: `null`, `true`, `false`
        /// or a plain string.
        fn other(&mut self) -> Option<()> {
            match self.raw.get(self.at)? {
                b'n' => self.literal(b"null"),
                b't' => self.literal(b"true"),
                b'f' => self.literal(b"false"),
                _ => self.string().map(|_| ()),
            }
        }

        /// A non-negative integer below 2³², written plainly.
        fn index(&mut self) -> Option<u32> {
            let digits = self.raw.get(self.at..)?;
            let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
            // No leading zero, at most ten digits, and no fraction or
            // exponent after them.
            if len == 0 || len > 10 || (len > 1 && digits[0] == b'0') {
                return None;
            }
            if !matches!(digits.get(len), Some(b',' | b'}')) {
                return None;
            }
            let value = digits[..len]
                .iter()
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            self.at += len;
            u32::try_from(value).ok()
        }

        /// The `choices` array, each choice folded into `facts` as the
        /// full reader folds them.
        fn choices(&mut self, facts: &mut Facts) -> Option<()> {
            self.byte(b'[')?;
            if self.raw.get(self.at) == Some(&b']') {
                self.at += 1;
                return Some(());
            }
            loop {
                let (index, finished, content, text_bytes) = self.choice()?;
                facts.choices = true;
                facts.content |= content;
                facts.text_bytes = facts.text_bytes.saturating_add(text_bytes);
                facts.finishes.note_choice(index, finished);
                facts.choice_index(index);
                match self.next()? {
                    b',' => continue,
                    b']' => return Some(()),
                    _ => return None,
                }
            }
        }

        /// One choice: its index, whether it finished, and its delta's
        /// content and bytes of text.
        fn choice(&mut self) -> Option<(u32, bool, bool, usize)> {
            self.byte(b'{')?;
            let (mut index, mut finished, mut content, mut text_bytes) = (0, false, false, 0);
            let mut seen = [false; 3];
            if self.raw.get(self.at) == Some(&b'}') {
                self.at += 1;
                return Some((index, finished, content, text_bytes));
            }
            loop {
                match self.key()? {
                    b"index" if !std::mem::replace(&mut seen[0], true) => index = self.index()?,
                    b"delta" if !std::mem::replace(&mut seen[1], true) => {
                        (content, text_bytes) = self.delta()?;
                    }
                    b"finish_reason" if !std::mem::replace(&mut seen[2], true) => {
                        finished = self.text()?.is_some();
                    }
                    b"index" | b"delta" | b"finish_reason" => return None,
                    _ => self.other()?,
                }
                match self.next()? {
                    b',' => continue,
                    b'}' => return Some((index, finished, content, text_bytes)),
                    _ => return None,
                }
            }
        }

        /// A delta of text: whether it carries any, and its bytes.
        fn delta(&mut self) -> Option<(bool, usize)> {
            self.byte(b'{')?;
            let (mut content, mut text_bytes) = (false, 0usize);
            let mut seen = [false; 3];
            if self.raw.get(self.at) == Some(&b'}') {
                self.at += 1;
                return Some((content, text_bytes));
            }
            loop {
                let text = match self.key()? {
                    b"role" if !std::mem::replace(&mut seen[0], true) => {
                        // `null` or a role's name, as the typed reader has them.
                        if !self.text()?.is_none_or(is_role) {
                            return None;
                        }
                        None
                    }
                    b"content" if !std::mem::replace(&mut seen[1], true) => self.text()?,
                    b"refusal" if !std::mem::replace(&mut seen[2], true) => self.text()?,
                    b"role" | b"content" | b"refusal" | b"tool_calls" => return None,
                    _ => {
                        self.other()?;
                        None
                    }
                };
                if let Some(text) = text {
                    content |= !text.is_empty();
                    text_bytes = text_bytes.saturating_add(text.len());
                }
                match self.next()? {
                    b',' => continue,
                    b'}' => return Some((content, text_bytes)),
                    _ => return None,
                }
            }
        }
    }

    /// Whether `name` is a role's, as the typed reader names them.
    fn is_role(name: &[u8]) -> bool {
        [
            Role::System,
            Role::Developer,
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::Function,
        ]
        .iter()
        .any(|role| role.as_str().as_bytes() == name)
    }
}

/// Fails on a key seen twice, as the chunk types' reader does.
fn once<E: de::Error>(seen: &mut bool, name: &'static str) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        return Err(E::duplicate_field(name));
    }
    Ok(())
}

struct ChunkVisitor {
    /// The known keys read already (by index: `ID` ... `choices`, `usage`).
    seen: [bool; KEYS],
}

impl<'de> Visitor<'de> for ChunkVisitor {
    type Value = (Facts, Option<Usage>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct ChatChunk")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut facts = Facts::default();
        let mut usage = None;
        let mut seen = self.seen;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                "id" => {
                    once(&mut seen[ID], "id")?;
                    map.next_value::<Text>()?;
                }
                "object" => {
                    once(&mut seen[OBJECT], "object")?;
                    map.next_value::<Text>()?;
                }
                "created" => {
                    once(&mut seen[CREATED], "created")?;
                    map.next_value::<u64>()?;
                }
                "model" => {
                    once(&mut seen[MODEL], "model")?;
                    map.next_value::<Text>()?;
                }
                "choices" => {
                    once(&mut seen[4], "choices")?;
                    // Folded into the facts as read: no vector of choices.
                    map.next_value_seed(Choices(&mut facts))?;
                }
                "usage" => {
                    once(&mut seen[5], "usage")?;
                    usage = map.next_value::<Option<Usage>>()?;
                }
                "error" => facts.error = map.next_value::<Option<Any>>()?.is_some(),
                _ => {
                    map.next_value::<Any>()?;
                }
            }
        }
        Ok((facts, usage))
    }
}

/// A JSON string, read (escapes and all) and not kept.
struct Text;

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor).map(|_| Text)
    }
}

/// A JSON string's length in bytes, once its escapes are read.
struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E>(self, v: &str) -> Result<usize, E> {
        Ok(v.len())
    }
}

/// A JSON string's length in bytes.
struct Len(usize);

impl<'de> Deserialize<'de> for Len {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor).map(Len)
    }
}

/// Any JSON value, read as a `serde_json::Value` would be (numbers out of
/// range fail alike) and not kept.
struct Any;

impl<'de> Deserialize<'de> for Any {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AnyVisitor)
    }
}

struct AnyVisitor;

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = Any;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Any, E> {
        Ok(Any)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Any, E> {
        Ok(Any)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Any, E> {
        Ok(Any)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Any, E> {
        Ok(Any)
    }

    fn visit_str<E>(self, _: &str) -> Result<Any, E> {
        Ok(Any)
    }

    fn visit_none<E>(self) -> Result<Any, E> {
        Ok(Any)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Any, D::Error> {
        Any::deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<Any, E> {
        Ok(Any)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Any, A::Error> {
        while seq.next_element::<Any>()?.is_some() {}
        Ok(Any)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Any, A::Error> {
        while map.next_key::<Any>()?.is_some() {
            map.next_value::<Any>()?;
        }
        Ok(Any)
    }
}

/// The `choices` array, each choice folded into the facts.
struct Choices<'f>(&'f mut Facts);

impl<'de> DeserializeSeed<'de> for Choices<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Choices<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(choice) = seq.next_element::<Choice>()? {
            let facts = &mut *self.0;
            facts.choices = true;
            facts.content |= choice.content;
            facts.text_bytes = facts.text_bytes.saturating_add(choice.text_bytes);
            facts.finishes.note_choice(choice.index, choice.finished);
            facts.choice_index(choice.index);
            for index in choice.tool_call_indexes.iter().copied() {
                facts.tool_call_index(index);
            }
        }
        Ok(())
    }
}

/// What the facts take of one choice.
#[derive(Default)]
struct Choice {
    index: u32,
    finished: bool,
    content: bool,
    text_bytes: usize,
    /// Read only when the delta has tool calls (rare: most chunks are text).
    tool_call_indexes: Vec<u32>,
}

impl<'de> Deserialize<'de> for Choice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ChoiceVisitor)
    }
}

struct ChoiceVisitor;

impl<'de> Visitor<'de> for ChoiceVisitor {
    type Value = Choice;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct ChunkChoice")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Choice, A::Error> {
        let mut choice = Choice::default();
        let mut seen = [false; 3];
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                "index" => {
                    once(&mut seen[0], "index")?;
                    choice.index = map.next_value()?;
                }
                "delta" => {
                    once(&mut seen[1], "delta")?;
                    let delta: Delta = map.next_value()?;
                    choice.content = delta.content;
                    choice.text_bytes = delta.text_bytes;
                    choice.tool_call_indexes = delta.tool_call_indexes;
                }
                "finish_reason" => {
                    once(&mut seen[2], "finish_reason")?;
                    choice.finished = map.next_value::<Option<Text>>()?.is_some();
                }
                _ => {
                    map.next_value::<Any>()?;
                }
            }
        }
        Ok(choice)
    }
}

/// What the facts take of one delta.
#[derive(Default)]
struct Delta {
    content: bool,
    text_bytes: usize,
    tool_call_indexes: Vec<u32>,
}

impl Delta {
    /// Notes a text field (content or refusal) of `len` bytes, if present.
    fn text(&mut self, len: Option<Len>) {
        if let Some(Len(len)) = len {
            self.content |= len > 0;
            self.text_bytes = self.text_bytes.saturating_add(len);
        }
    }
}

impl<'de> Deserialize<'de> for Delta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DeltaVisitor)
    }
}

struct DeltaVisitor;

impl<'de> Visitor<'de> for DeltaVisitor {
    type Value = Delta;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct Delta")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Delta, A::Error> {
        let mut delta = Delta::default();
        let mut seen = [false; 4];
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                "role" => {
                    once(&mut seen[0], "role")?;
                    map.next_value::<Option<Role>>()?;
                }
                "content" => {
                    once(&mut seen[1], "content")?;
                    delta.text(map.next_value::<Option<Len>>()?);
                }
                "tool_calls" => {
                    once(&mut seen[2], "tool_calls")?;
                    // The typed reader: tool calls are rare, and their
                    // shape (a struct, which JSON may also give as an
                    // array) is the derive's to decide.
                    if let Some(calls) = map.next_value::<Option<Vec<ToolCallDelta>>>()? {
                        delta.content |= !calls.is_empty();
                        delta.text_bytes = delta.text_bytes.saturating_add(arguments_len(&calls));
                        delta.tool_call_indexes = calls.iter().map(|c| c.index).collect();
                    }
                }
                "refusal" => {
                    once(&mut seen[3], "refusal")?;
                    delta.text(map.next_value::<Option<Len>>()?);
                }
                _ => {
                    map.next_value::<Any>()?;
                }
            }
        }
        Ok(delta)
    }
}

#[cfg(test)]
mod tests {
    //! The facts reader accepts exactly the JSON that reads as a
    //! [`ChatChunk`], and reads of it what [`Facts::of`] reads of that
    //! chunk: the gateway's checks on forwarded bytes are the checks on
    //! typed chunks.

    use proptest::prelude::*;
    use serde_json::Value;

    use super::{read, BadIndex, Facts, Reader, MAX_PREFIX, MAX_SCRATCH};
    use crate::chat::chunk::ChatChunk;

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u32>().prop_map(|n| n.to_string()),
            (0u32..140).prop_map(|n| n.to_string()),
            Just(u64::MAX.to_string()),
            Just("18446744073709551616".to_owned()),
            Just("1e400".to_owned()),
            Just("-0".to_owned()),
            Just("1.5".to_owned()),
            "[a-z\"\\\\é]{0,6}".prop_map(|s| Value::from(s).to_string()),
            Just(r#""""#.to_owned()),
            Just(r#""\ud800""#.to_owned()),
            Just(r#""\u00e9\n""#.to_owned()),
            Just(r#""assistant""#.to_owned()),
            Just(r#""robot""#.to_owned()),
            Just("[]".to_owned()),
            Just("{}".to_owned()),
            Just(r#"{"a":[1e400]}"#.to_owned()),
            Just(r#"{"a":{"b":null,"b":"\ud800"}}"#.to_owned()),
            Just(r#"{"message":"no"}"#.to_owned()),
            Just(r#"[{"index":1,"id":"c","function":{"arguments":"{}"}}]"#.to_owned()),
            Just(r#"[{"index":200}]"#.to_owned()),
            Just(r#"[[3,"id","function",{"name":"f","arguments":"ab"}]]"#.to_owned()),
            Just(r#"[{"function":{"arguments":1}}]"#.to_owned()),
            Just(r#"[{"index":-1}]"#.to_owned()),
        ]
    }

    /// A JSON object of `keys` (repeats allowed), values from `value`.
    fn object(
        keys: Vec<&'static str>,
        value: impl Strategy<Value = String>,
    ) -> impl Strategy<Value = String> {
        prop::collection::vec((prop::sample::select(keys), value), 0..6).prop_map(|fields| {
            let body: Vec<String> = fields
                .into_iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            format!("{{{}}}", body.join(","))
        })
    }

    fn chunk() -> impl Strategy<Value = String> {
        let delta = object(
            vec![
                "role",
                "content",
                "tool_calls",
                "refusal",
                "z",
                "\\u0063ontent",
                "content",
            ],
            scalar(),
        );
        let delta_or_scalar = prop_oneof![3 => delta, 1 => scalar()];
        let choice = object(
            vec![
                "index",
                "delta",
                "finish_reason",
                "logprobs",
                "delta",
                "\\u0069ndex",
            ],
            delta_or_scalar,
        );
        let choices = prop_oneof![
            3 => prop::collection::vec(choice, 0..3).prop_map(|c| format!("[{}]", c.join(","))),
            1 => scalar(),
        ];
        let usage = prop_oneof![
            object(
                vec![
                    "prompt_tokens",
                    "total_tokens",
                    "details",
                    "completion_tokens"
                ],
                scalar(),
            ),
            scalar(),
        ];
        let value = prop_oneof![3 => choices, 1 => usage, 2 => scalar()];
        object(
            vec![
                "id",
                "object",
                "created",
                "model",
                "choices",
                "usage",
                "x",
                "choices",
                "error",
                "\\u0065rror",
                "mod\\u0065l",
            ],
            value,
        )
    }

    /// `text`, a generated chunk, sometimes cut short or with a byte
    /// changed or added around it.
    fn text() -> impl Strategy<Value = String> {
        (
            chunk(),
            0usize..8,
            any::<prop::sample::Index>(),
            any::<u8>(),
        )
            .prop_map(|(text, how, at, byte)| {
                let at = at.index(text.len() + 1);
                let at = (0..=at)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                let byte = char::from(byte % 0x80);
                match how {
                    0 => text[..at].to_owned(),
                    1 => format!("{}{byte}{}", &text[..at], &text[at..]),
                    2 => format!(" {text} "),
                    3 => format!("{text}{byte}"),
                    4 => format!("[{text}]"),
                    _ => text,
                }
            })
    }

    fn check(text: &str) -> Result<(), TestCaseError> {
        let typed = serde_json::from_str::<ChatChunk>(text);
        let facts = read(text);
        prop_assert_eq!(
            typed.is_ok(),
            facts.is_ok(),
            "{}: typed {:?}, facts {:?}",
            text,
            typed.as_ref().err(),
            facts.as_ref().err()
        );
        if let (Ok(chunk), Ok((facts, usage))) = (typed, facts) {
            prop_assert_eq!(facts, Facts::of(&chunk), "{}", text);
            prop_assert_eq!(usage, chunk.usage, "{}", text);
        }
        Ok(())
    }

    /// The starts of a stream's chunks: plain fields, then anything.
    fn start() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","#,
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","#,
            r#"{ "id" : "c" , "created": 1 ,"#,
            r#"{"x":{"y":[1,"}"]},"id":"c","#,
            r#"{"id":"c","choices":[],"#,
            r#"{"id":"c","error":null,"#,
            r#"{"model":"m","id":"c","#,
            r#"{"id":"c","model":"m" "#,
            r#"{"#,
        ])
        .prop_map(str::to_owned)
    }

    /// A stream's chunk texts: a start they mostly share, each going on
    /// with generated members (or a generated chunk of its own, or cut).
    fn stream() -> impl Strategy<Value = Vec<String>> {
        (
            start(),
            prop::collection::vec(
                (chunk(), 0usize..10, start(), any::<prop::sample::Index>()),
                1..6,
            ),
        )
            .prop_map(|(shared, chunks)| {
                chunks
                    .into_iter()
                    .map(|(chunk, how, other, at)| {
                        let rest = chunk.strip_prefix('{').unwrap_or(&chunk);
                        match how {
                            0 => chunk.clone(),
                            1 => format!("{other}{rest}"),
                            2 => {
                                let whole = format!("{shared}{rest}");
                                let at = at.index(whole.len() + 1);
                                let at = (0..=at).rev().find(|&i| whole.is_char_boundary(i));
                                whole[..at.unwrap_or(0)].to_owned()
                            }
                            3 => format!("{shared} {rest}"),
                            _ => format!("{shared}{rest}"),
                        }
                    })
                    .collect()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn the_facts_read_what_the_typed_chunk_reads(text in text()) {
            check(&text)?;
        }

        #[test]
        fn a_stream_read_past_its_shared_start_reads_as_each_chunk_in_full(texts in stream()) {
            let mut reader = Reader::default();
            for text in &texts {
                let whole = read(text);
                let skipped = reader.read(text);
                prop_assert_eq!(
                    whole.is_ok(),
                    skipped.is_ok(),
                    "{:?}: in full {:?}, past the start {:?}",
                    texts,
                    whole.as_ref().err(),
                    skipped.as_ref().err()
                );
                if let (Ok(whole), Ok(skipped)) = (whole, skipped) {
                    prop_assert_eq!(whole, skipped, "{:?}", text);
                }
                check(text)?;
            }
        }
    }

    /// A value just outside the hand reader's shape, or far from it.
    fn odd() -> BoxedStrategy<String> {
        prop::sample::select(vec![
            "nul",
            "true",
            "false",
            "00",
            "01",
            "4294967296",
            "99999999999",
            "-1",
            "1.0",
            "1e2",
            r#""Assistant""#,
            r#""robot""#,
            r#""a\"b""#,
            r#""\u00e9""#,
            "\"tab\there\"",
            "{}",
            "[]",
            r#"{"a":1}"#,
        ])
        .prop_map(str::to_owned)
        .boxed()
    }

    /// Mostly one of `good`, sometimes an odd value.
    fn mostly(good: &[&'static str]) -> BoxedStrategy<String> {
        let good = prop::sample::select(good.to_vec()).prop_map(str::to_owned);
        prop_oneof![6 => good, 1 => odd()].boxed()
    }

    /// `"key":value`.
    fn member(key: &'static str, value: BoxedStrategy<String>) -> BoxedStrategy<String> {
        value.prop_map(move |v| format!("\"{key}\":{v}")).boxed()
    }

    /// An object of some of `members` (a member may come twice).
    fn members(
        members: Vec<(u32, BoxedStrategy<String>)>,
        count: std::ops::Range<usize>,
    ) -> BoxedStrategy<String> {
        prop::collection::vec(prop::strategy::Union::new_weighted(members), count)
            .prop_map(|m| format!("{{{}}}", m.join(",")))
            .boxed()
    }

    /// The rest of a chunk past a shared start, mostly in the common shape
    /// of text chunks, sometimes a value or a byte off it.
    fn plain_rest() -> impl Strategy<Value = String> {
        let text = || mostly(&["null", r#""""#, r#""x""#, r#""stop""#, r#""é""#]);
        let delta = members(
            vec![
                (
                    2,
                    member("role", mostly(&["null", r#""assistant""#, r#""tool""#])),
                ),
                (4, member("content", text())),
                (1, member("refusal", text())),
                (1, member("tool_calls", odd())),
                (1, member("z", text())),
            ],
            0..4,
        );
        let near = prop::sample::select(vec!["00", "01", "-0", "4294967296", "1.5", "1e1", "2 "]);
        let index = prop_oneof![
            4 => mostly(&["0", "1", "7", "127", "128", "4294967295"]),
            1 => near.prop_map(str::to_owned),
        ]
        .boxed();
        let choice = members(
            vec![
                (3, member("index", index.clone())),
                (
                    3,
                    member("delta", prop_oneof![6 => delta, 1 => odd()].boxed()),
                ),
                (2, member("finish_reason", text())),
                (1, member("logprobs", text())),
            ],
            0..5,
        );
        let choices = prop_oneof![
            6 => prop::collection::vec(choice, 0..3).prop_map(|c| format!("[{}]", c.join(","))),
            1 => odd(),
        ];
        let rest = members(
            vec![
                (6, member("choices", choices.boxed())),
                (1, member("usage", mostly(&["null"]))),
                (1, member("obfuscation", text())),
                (1, member("id", text())),
                (1, member("model", text())),
                (1, member("created", index)),
                (1, member("error", text())),
            ],
            1..4,
        );
        let noise = prop::sample::select(vec![" ", ",", "}", "]", "\"", "\\", "0", "n", "{"]);
        (rest, 0usize..8, any::<prop::sample::Index>(), noise).prop_map(|(rest, how, at, noise)| {
            let rest = rest.strip_prefix('{').unwrap_or(&rest).to_owned();
            let at = at.index(rest.len() + 1);
            if !rest.is_char_boundary(at) {
                return rest;
            }
            match how {
                0 => format!("{}{noise}{}", &rest[..at], &rest[at..]),
                1 if at < rest.len() && rest.is_char_boundary(at + 1) => {
                    format!("{}{}", &rest[..at], &rest[at + 1..])
                }
                2 => rest[..at].to_owned(),
                _ => rest,
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(6000))]

        /// What the hand reader reads at all, it reads as the full reader
        /// does; the rest it leaves to it.
        #[test]
        fn the_hand_reader_reads_its_shape_as_the_full_reader_does(
            rest in plain_rest(),
            seen in any::<[bool; 4]>(),
        ) {
            let seen = [seen[0], seen[1], seen[2], seen[3], false, false];
            if let Some(facts) = super::plain::read(&rest, seen) {
                let full = super::read_object(&format!("{{{rest}"), seen);
                prop_assert_eq!(full.ok(), Some((facts, None)), "{}", rest);
            }
        }
    }

    #[test]
    fn text_chunks_as_providers_send_them_are_read_by_hand() {
        let seen = [true, true, true, true, false, false];
        for (rest, content, text_bytes, finished) in [
            (
                r#""choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}"#,
                false,
                0,
                false,
            ),
            (
                r#""choices":[{"index":0,"delta":{"content":" here"},"logprobs":null,"finish_reason":null}],"obfuscation":"k2"}"#,
                true,
                5,
                false,
            ),
            (
                r#""choices":[{"index":0,"delta":{"content":"é"},"finish_reason":null}],"usage":null}"#,
                true,
                2,
                false,
            ),
            (
                r#""system_fingerprint":"fp","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
                false,
                0,
                true,
            ),
            (r#""choices":[]}"#, false, 0, false),
        ] {
            let facts = super::plain::read(rest, seen).unwrap_or_else(|| panic!("{rest}"));
            assert_eq!(
                (facts.content, facts.text_bytes),
                (content, text_bytes),
                "{rest}"
            );
            assert_eq!(facts.finishes.complete(), finished, "{rest}");
            let full = super::read_object(&format!("{{{rest}"), seen).unwrap();
            assert_eq!(full, (facts, None), "{rest}");
        }
        // Left to the full reader: escapes, tool calls, usage, a repeat.
        for rest in [
            r#""choices":[{"index":0,"delta":{"content":"a
b"}}]}"#,
            r#""choices":[{"index":0,"delta":{"tool_calls":[]}}]}"#,
            r#""choices":[],"usage":{"total_tokens":3}}"#,
            r#""choices":[{"index":0,"index":1}]}"#,
            r#""model":"m","choices":[]}"#,
            r#""choices":[] }"#,
        ] {
            assert_eq!(super::plain::read(rest, seen), None, "{rest}");
        }
    }

    #[test]
    fn a_reader_skips_only_plain_fields_and_keeps_a_short_start() {
        let mut reader = Reader::default();
        let first = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"}}]}"#;
        reader.read(first).unwrap();
        assert_eq!(
            reader.prefix,
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","#
        );
        assert_eq!(reader.seen, [true, true, true, true, false, false]);
        // The next chunk reads past the start; a known key again fails.
        let next = first.replace(r#""a""#, r#""b""#);
        assert_eq!(reader.read(&next).unwrap().0.text_bytes, 1);
        let again = first.replace(r#""choices""#, r#""model":"x","choices""#);
        assert!(reader.read(&again).is_err());
        assert!(read(&again).is_err());
        // Nothing past `choices`, `usage` or `error` is kept.
        reader
            .read(r#"{"error":null,"id":"c","choices":[]}"#)
            .unwrap();
        assert_eq!(reader.prefix, "");
        // A start longer than MAX_PREFIX is not kept whole.
        let long = format!(
            r#"{{"x":"{}","y":1,"choices":[]}}"#,
            "a".repeat(2 * MAX_PREFIX)
        );
        reader.read(&long).unwrap();
        assert!(reader.prefix.len() <= MAX_PREFIX);
        // Nor is the room a large chunk took kept after it.
        reader.read(first).unwrap();
        let large = first.replace(r#""a""#, &format!(r#""{}""#, "a".repeat(4 * MAX_SCRATCH)));
        assert_eq!(reader.read(&large).unwrap().0.text_bytes, 4 * MAX_SCRATCH);
        assert!(reader.scratch.capacity() <= MAX_SCRATCH);
        assert_eq!(reader.read(&next).unwrap().0.text_bytes, 1);
    }

    #[test]
    fn the_facts_of_a_stream_chunk() {
        let (facts, usage) = read(
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"h\u00e9"},"finish_reason":null},{"index":2,"delta":{"tool_calls":[{"index":130,"function":{"arguments":"{}"}}]},"finish_reason":"tool_calls"}],"error":{"m":1},"error":null}"#,
        )
        .unwrap();
        assert!(facts.content && facts.choices && !facts.error);
        assert_eq!(facts.text_bytes, 3 + 2, "the text as read, escapes decoded");
        assert_eq!(facts.bad_index, Some(BadIndex::ToolCall(130)));
        let mut finishes = crate::chat::Finishes::default();
        finishes.note_choice(0, false);
        finishes.note_choice(2, true);
        assert_eq!(facts.finishes, finishes);
        assert!(!facts.finishes.complete());
        assert_eq!(usage, None);

        let (facts, usage) =
            read(r#"{"choices":[],"usage":{"prompt_tokens":1,"total_tokens":3},"error":{"x":1}}"#)
                .unwrap();
        assert!(!facts.choices && !facts.content && facts.error);
        assert_eq!(usage.unwrap().total_tokens, 3);
    }

    #[test]
    fn what_a_typed_chunk_refuses_the_facts_refuse() {
        for text in [
            r#"{"id":"a","id":"b"}"#,
            r#"{"choices":[{"delta":{"role":"robot"}}]}"#,
            r#"{"choices":[{"index":-1}]}"#,
            r#"{"choices":[{"index":0,"\u0069ndex":0}]}"#,
            r#"{"choices":null}"#,
            r#"{"choices":[{"delta":null}]}"#,
            r#"{"x":1e400}"#,
            r#"{"x":"\ud800"}"#,
            r#"{"created":1.0}"#,
            r#"{"model":1}"#,
            r#"{"choices":[]} x"#,
            "[]",
            "",
        ] {
            assert!(serde_json::from_str::<ChatChunk>(text).is_err(), "{text}");
            assert!(read(text).is_err(), "{text}");
        }
    }
}
