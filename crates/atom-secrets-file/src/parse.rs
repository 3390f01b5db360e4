//! Reading a secrets file strictly: size limit, UTF-8, JSON with line and
//! column, an object at the top, and no name twice in any object (serde_json
//! on its own silently keeps the last of two equal names).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Read as _};
use std::path::Path;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// The entries of a secrets file, in file order.
pub(crate) type Entries = Map<String, Value>;

/// Reads and parses `path`. `missing_hint` is the next step shown when the
/// file does not exist.
pub(crate) fn read_entries(path: &Path, limit: u64, missing_hint: &'static str) -> Result<Entries> {
    let bytes = read_bytes(path, limit, missing_hint)?;
    parse_entries(path, &bytes)
}

/// Like [`read_entries`], but `None` when the file does not exist.
pub(crate) fn read_entries_if_exists(path: &Path, limit: u64) -> Result<Option<Entries>> {
    match read_entries(path, limit, "") {
        Ok(entries) => Ok(Some(entries)),
        Err(Error::Missing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn read_bytes(path: &Path, limit: u64, missing_hint: &'static str) -> Result<Vec<u8>> {
    let unreadable = |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound => Error::Missing {
            path: path.to_owned(),
            hint: missing_hint,
        },
        kind => Error::Unreadable {
            path: path.to_owned(),
            kind,
        },
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if meta.is_dir() {
        return Err(Error::Unreadable {
            path: path.to_owned(),
            kind: io::ErrorKind::IsADirectory,
        });
    }
    if meta.len() > limit {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // Bounded even if the file grows between stat and read.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// Parses the bytes of a secrets file as every operation does (UTF-8, no
/// BOM, JSON with line and column in errors, an object at the top, no name
/// twice in any object); `path` names the file in errors. The names and
/// values in file order.
pub fn parse_secrets(path: &Path, bytes: &[u8]) -> Result<Map<String, Value>> {
    parse_entries(path, bytes)
}

/// Parses the bytes of a secrets file read from `path`.
pub(crate) fn parse_entries(path: &Path, bytes: &[u8]) -> Result<Entries> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(Error::Bom {
            path: path.to_owned(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = position(&bytes[..e.valid_up_to()]);
        Error::NotUtf8 {
            path: path.to_owned(),
            line,
            column,
        }
    })?;
    if text.trim().is_empty() {
        return Err(Error::Empty {
            path: path.to_owned(),
        });
    }
    let state = State::default();
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict(&state)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            if let Some(name) = state.duplicate.take() {
                return Error::DuplicateName {
                    path: path.to_owned(),
                    name,
                    line: e.line(),
                    column: e.column(),
                };
            }
            Error::InvalidJson {
                path: path.to_owned(),
                problem: problem_text(&e),
                line: e.line(),
                column: e.column(),
            }
        })?;
    if state.huge_whole_number.get()
        && let Some(at) = integer_beyond_64_bits(text)
    {
        let (line, column) = position(&bytes[..at]);
        return Err(Error::InexactNumber {
            path: path.to_owned(),
            line,
            column,
        });
    }
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Error::NotAnObject {
            path: path.to_owned(),
            found: kind_name(&other),
        }),
    }
}

/// serde_json's message without its trailing " at line L column C" (we say
/// that ourselves). Its syntax messages never quote the input.
fn problem_text(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// 1-based line and column just after `prefix`.
fn position(prefix: &[u8]) -> (usize, usize) {
    let line = prefix.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = match prefix.iter().rposition(|&b| b == b'\n') {
        Some(i) => prefix.len() - i,
        None => prefix.len() + 1,
    };
    (line, column)
}

pub(crate) fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The start of the first integer literal in `text` (valid JSON) that fits
/// neither `i64` nor `u64`. serde_json reads such a literal as the nearest
/// double, so a migrate and rollback would give back other digits.
fn integer_beyond_64_bits(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Skip the string; the JSON is valid, so it ends.
                i += 1;
                while bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let literal = &text[start..i];
                let integer = !literal.contains(['.', 'e', 'E']);
                if integer && literal.parse::<i64>().is_err() && literal.parse::<u64>().is_err() {
                    return Some(start);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Integral doubles of this magnitude or more are where an integer literal
/// beyond `u64`/`i64` lands (as do huge numbers written with an exponent,
/// which are kept: only the source text tells them apart).
const HUGE_WHOLE_NUMBER: f64 = 18_446_744_073_709_551_616.0; // 2^64

/// What [`Strict`] saw besides the value.
#[derive(Default)]
struct State {
    /// A name that appears twice in one object (a name is not secret;
    /// values are never recorded).
    duplicate: RefCell<Option<String>>,
    /// Whether a number read as a whole double of 2^64 or more.
    huge_whole_number: Cell<bool>,
}

/// A JSON value deserializer that fails on a repeated name in any object,
/// and notes numbers that may have been integers beyond 64 bits.
#[derive(Clone, Copy)]
struct Strict<'a>(&'a State);

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // `123456789012345678901234567890` arrives here as 1.2345678901234568e29;
        // `parse_entries` looks at the text when one may have.
        if v.fract() == 0.0 && v.abs() >= HUGE_WHOLE_NUMBER {
            self.0.huge_whole_number.set(true);
        }
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            if map.contains_key(&name) {
                let message = format!("the name \"{name}\" appears twice");
                *self.0.duplicate.borrow_mut() = Some(name);
                return Err(de::Error::custom(message));
            }
            let value = access.next_value_seed(self)?;
            map.insert(name, value);
        }
        Ok(Value::Object(map))
    }
}
