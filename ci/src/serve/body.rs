//! Request bodies: JSON objects read field by field so every rejection names its field.
//!
//! serde's derived errors say "invalid type: string, expected u64 at column 14" without the
//! key; clients need the key. Bodies are parsed into a `serde_json::Value` (bounded by the
//! body limit) and each member is checked here.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::ApiError;

/// A JSON object body, or the 400/422 that says what is wrong with it.
pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    /// Parses `body` as a JSON object whose keys are all in `known`.
    pub fn parse(body: Result<Bytes, BytesRejection>, known: &[&str]) -> Result<Self, ApiError> {
        // An oversized body is answered like every other invalid body: 422 naming
        // `body`, so a client has one rule to handle (the API's contract, rather than
        // the 413 that axum's limit would send).
        let bytes = body.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::field(
                    "body",
                    format!(
                        "larger than the {} byte limit; send the input as a shorter array or use a seed",
                        super::BODY_LIMIT
                    ),
                )
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, format!("body: {}", r.body_text()))
            }
        })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("body: not valid JSON ({e})"),
            )
        })?;
        let Value::Object(map) = value else {
            return Err(ApiError::field("body", "must be a JSON object"));
        };
        if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ApiError::field(
                k,
                format!("unknown field; accepted: {}", known.join(", ")),
            ));
        }
        Ok(Fields { map })
    }

    /// An unsigned integer in `range`, if present.
    pub fn u64_in(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, ApiError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if range.contains(&n) => Ok(Some(n)),
                Some(n) => Err(ApiError::field(
                    key,
                    format!("{n} is outside {}..={}", range.start(), range.end()),
                )),
                None => Err(ApiError::field(
                    key,
                    format!("expected an unsigned integer, got {}", kind(v)),
                )),
            },
        }
    }

    /// A signed integer in `range`, if present.
    pub fn i64_in(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, ApiError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_i64() {
                Some(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::field(
                    key,
                    format!(
                        "expected an integer in {}..={}, got {v}",
                        range.start(),
                        range.end()
                    ),
                )),
            },
        }
    }

    /// A boolean, if present.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(ApiError::field(
                key,
                format!("expected true or false, got {}", kind(v)),
            )),
        }
    }

    /// A string of at most `max` bytes, if present.
    pub fn string(&self, key: &str, max: usize) -> Result<Option<String>, ApiError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.len() <= max => Ok(Some(s.clone())),
            Some(Value::String(s)) => Err(ApiError::field(
                key,
                format!("{} bytes is longer than {max}", s.len()),
            )),
            Some(v) => Err(ApiError::field(
                key,
                format!("expected a string, got {}", kind(v)),
            )),
        }
    }

    /// An array of finite numbers, if present.
    pub fn f32_array(&self, key: &str) -> Result<Option<Vec<f32>>, ApiError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v.as_f64() {
                    Some(x) if x.is_finite() && (x as f32).is_finite() => Ok(x as f32),
                    _ => Err(ApiError::field(
                        key,
                        format!("element {i} is {v}, expected a finite f32"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(ApiError::field(
                key,
                format!("expected an array of numbers, got {}", kind(v)),
            )),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(n) if n.is_i64() && !n.is_u64() => "a negative number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
