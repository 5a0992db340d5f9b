//! Steps over JSON text the typed readers already accepted, for the fast
//! paths that reuse a provider's bytes: skipping whitespace, a string, a
//! value. They check nothing of the JSON but never trust it either: any
//! byte they do not expect ends the walk with `None`, never a span
//! outside the text.

#![cfg_attr(not(any(feature = "openai", feature = "server")), allow(dead_code))]

/// The first byte at or after `at` that is not JSON whitespace.
pub(crate) fn skip_space(raw: &[u8], mut at: usize) -> usize {
    while raw
        .get(at)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        at += 1;
    }
    at
}

/// Just past the closing quote of the string opening at `at`.
pub(crate) fn string_end(raw: &[u8], at: usize) -> Option<usize> {
    let mut i = at.checked_add(1)?;
    loop {
        let found = i + memchr::memchr2(b'"', b'\\', raw.get(i..)?)?;
        match raw[found] {
            b'"' => return Some(found + 1),
            _ => i = found + 2,
        }
    }
}

/// Just past the value starting at `at`: a string, an object or array
/// (skipped to its matching close, strings included), or a scalar.
pub(crate) fn value_end(raw: &[u8], at: usize) -> Option<usize> {
    match raw.get(at)? {
        b'"' => string_end(raw, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match raw.get(i)? {
                    b'"' => {
                        i = string_end(raw, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = at;
            while raw
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                i += 1;
            }
            (i > at).then_some(i)
        }
    }
}
