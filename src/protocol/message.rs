//! One message: `{"action", "data", "from", "to", "receiverPid"}`, as egg-cluster's Messenger
//! carries it, plus `requestId` / `replyTo` / `error` for request/reply, and the endpoints
//! it names.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A party a message comes from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// The clutch master itself.
    Master,
    /// Whoever started the master over an IPC channel (or the [`crate::Master`] handle).
    Parent,
    /// App workers: all of them, or one by `receiverPid`.
    App,
    /// The agent worker.
    Agent,
}

impl Endpoint {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Master => "master",
            Endpoint::Parent => "parent",
            Endpoint::App => "app",
            Endpoint::Agent => "agent",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Endpoint> {
        match s {
            "master" => Some(Endpoint::Master),
            "parent" => Some(Endpoint::Parent),
            "app" => Some(Endpoint::App),
            "agent" => Some(Endpoint::Agent),
            _ => None,
        }
    }

    /// Where a message from `self` goes when it names no `to` (egg-cluster's defaults).
    pub fn default_to(self) -> Endpoint {
        match self {
            Endpoint::Agent => Endpoint::App,
            Endpoint::App => Endpoint::Agent,
            Endpoint::Parent | Endpoint::Master => Endpoint::Master,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A whole message, as a worker or the parent sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// What the message is about (`app-start`, `cluster-pids`, or the application's own).
    pub action: String,
    /// Any JSON.
    #[serde(default)]
    pub data: Value,
    /// Set by the master from the channel the message arrived on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Endpoint>,
    /// Where it goes; absent means the sender's default route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Endpoint>,
    /// With `to: app`, only the app worker with this pid.
    #[serde(
        rename = "receiverPid",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "pid_or_string"
    )]
    pub receiver_pid: Option<u32>,
    /// Makes it a request: the receiver answers with a message whose `reply_to` is this
    /// (a string or a number). The master rewrites it in transit (see `docs/PROTOCOL.md`).
    #[serde(rename = "requestId", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Value>,
    /// Makes it the answer to the request whose `requestId` this is.
    #[serde(rename = "replyTo", default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Value>,
    /// On a reply: the request failed (the master says why: no such receiver, it exited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// Nothing came back in time.
    #[error("no reply within {0:?}")]
    Timeout(std::time::Duration),
    /// The reply carries an `error` (from the master: no such receiver, it exited).
    #[error("{0}")]
    Failed(String),
    /// The channel to the master closed first.
    #[error("the channel to the master closed before the reply came")]
    Closed,
}

impl Message {
    /// A message with `action` and `data` and no route (the sender's default applies).
    pub fn new(action: impl Into<String>, data: Value) -> Message {
        Message {
            action: action.into(),
            data,
            from: None,
            to: None,
            receiver_pid: None,
            request_id: None,
            reply_to: None,
            error: None,
        }
    }

    /// The same message addressed to `to`.
    pub fn to(mut self, to: Endpoint) -> Message {
        self.to = Some(to);
        self
    }

    /// The same message addressed to the one app worker whose pid is `pid`.
    pub fn to_pid(mut self, pid: u32) -> Message {
        self.to = Some(Endpoint::App);
        self.receiver_pid = Some(pid);
        self
    }

    /// Parses one line: a JSON object, or a bare JSON string `"x"` meaning
    /// `{"action":"x","data":"x"}`.
    pub fn from_line(line: &[u8]) -> Result<Message, serde_json::Error> {
        let trimmed = line.trim_ascii_start();
        if trimmed.first() == Some(&b'"') {
            let action: String = serde_json::from_slice(line)?;
            return Ok(Message::new(action.clone(), Value::String(action)));
        }
        serde_json::from_slice(line)
    }

    /// Appends the message as one line (JSON and `\n`) to `out`.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(&mut *out, self).expect("a Message always serializes");
        out.push(b'\n');
    }
}

/// The routing fields of a message, read without building the rest (the master's hot path).
///
/// The fields borrow from the line, so nothing is allocated; a field written with escapes
/// cannot be borrowed, and [`Header::parse`] then falls back to owned copies.
#[derive(Debug, Default, PartialEq)]
pub struct Header<'a> {
    /// Present on Node's internal messages (`NODE_HANDLE`, `NODE_HANDLE_ACK`, ...).
    pub cmd: Option<Cow<'a, str>>,
    pub action: Option<Cow<'a, str>>,
    /// The JSON text of `from` when the key is there at all (`"app"` with its quotes,
    /// `null`, ...), so that a present-but-null `from` is told from an absent one.
    pub from_json: Option<Cow<'a, str>>,
    pub to: Option<Cow<'a, str>>,
    pub receiver_pid: Option<u32>,
    /// The JSON text of `requestId`, when the message is a request.
    pub request_id: Option<Cow<'a, str>>,
    /// The JSON text of `replyTo`, when the message is a reply.
    pub reply_to: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Borrowed<'a> {
    #[serde(borrow, default)]
    cmd: Option<&'a str>,
    #[serde(borrow, default)]
    action: Option<&'a str>,
    #[serde(borrow, default, deserialize_with = "raw_present")]
    from: Option<&'a RawValue>,
    #[serde(borrow, default)]
    to: Option<&'a str>,
    #[serde(rename = "receiverPid", default, deserialize_with = "pid_or_string")]
    receiver_pid: Option<u32>,
    #[serde(rename = "requestId", borrow, default)]
    request_id: Option<&'a RawValue>,
    #[serde(rename = "replyTo", borrow, default)]
    reply_to: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Owned {
    #[serde(default)]
    cmd: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default, deserialize_with = "boxed_raw_present")]
    from: Option<Box<RawValue>>,
    #[serde(default)]
    to: Option<String>,
    #[serde(rename = "receiverPid", default, deserialize_with = "pid_or_string")]
    receiver_pid: Option<u32>,
    #[serde(rename = "requestId", default)]
    request_id: Option<Box<RawValue>>,
    #[serde(rename = "replyTo", default)]
    reply_to: Option<Box<RawValue>>,
}

impl<'a> Header<'a> {
    /// Reads the routing fields of one JSON object, validating the whole of it: a one-pass
    /// scanner for the usual lines, serde_json for the rest and for every error.
    pub fn parse(text: &'a str) -> Result<Header<'a>, serde_json::Error> {
        match super::header_scan::scan(text) {
            Some(fields) => Ok(fields.header()),
            None => Header::parse_with_serde(text),
        }
    }

    /// [`parse`](Self::parse) by serde_json alone: the reference the scanner is held to.
    pub(crate) fn parse_with_serde(text: &'a str) -> Result<Header<'a>, serde_json::Error> {
        match serde_json::from_str::<Borrowed<'a>>(text) {
            Ok(b) => Ok(Header {
                cmd: b.cmd.map(Cow::Borrowed),
                action: b.action.map(Cow::Borrowed),
                from_json: b.from.map(|r| Cow::Borrowed(r.get())),
                to: b.to.map(Cow::Borrowed),
                receiver_pid: b.receiver_pid,
                request_id: b.request_id.map(|r| Cow::Borrowed(r.get())),
                reply_to: b.reply_to.map(|r| Cow::Borrowed(r.get())),
            }),
            Err(_) => {
                let o: Owned = serde_json::from_str(text)?;
                Ok(Header {
                    cmd: o.cmd.map(Cow::Owned),
                    action: o.action.map(Cow::Owned),
                    from_json: o.from.map(|r| Cow::Owned(r.get().to_string())),
                    to: o.to.map(Cow::Owned),
                    receiver_pid: o.receiver_pid,
                    request_id: o.request_id.map(|r| Cow::Owned(r.get().to_string())),
                    reply_to: o.reply_to.map(|r| Cow::Owned(r.get().to_string())),
                })
            }
        }
    }
}

/// A key that is there, whatever its value (`null` included: `Option` alone reads null as
/// absent).
fn raw_present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

fn boxed_raw_present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// egg-cluster sends `receiverPid` as a number or as a string of digits; take both.
fn pid_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct PidVisitor;
    impl<'de> Visitor<'de> for PidVisitor {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a pid as a number or a string of digits")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            u32::try_from(v).map(Some).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u32::try_from(v).map(Some).map_err(E::custom)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.parse().map(Some).map_err(E::custom)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_option(PidVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bare_string_is_action_and_data() {
        let m = Message::from_line(b"\"hello\"").unwrap();
        assert_eq!(m.action, "hello");
        assert_eq!(m.data, json!("hello"));
    }

    #[test]
    fn receiver_pid_accepts_number_and_string() {
        let a = Message::from_line(br#"{"action":"x","receiverPid":42}"#).unwrap();
        let b = Message::from_line(br#"{"action":"x","receiverPid":"42"}"#).unwrap();
        assert_eq!(a.receiver_pid, Some(42));
        assert_eq!(b.receiver_pid, Some(42));
    }

    #[test]
    fn message_round_trips_through_a_line() {
        let m = Message::new("ping", json!({"n": 1})).to_pid(7);
        let mut line = Vec::new();
        m.write_line(&mut line);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(Message::from_line(&line).unwrap(), m);
    }

    #[test]
    fn header_reads_routing_fields_and_skips_data() {
        let h = Header::parse(
            r#"{"action":"a","data":{"deep":[1,2,{"x":"y"}]},"to":"app","receiverPid":"9"}"#,
        )
        .unwrap();
        assert_eq!(h.action.as_deref(), Some("a"));
        assert_eq!(h.to.as_deref(), Some("app"));
        assert_eq!(h.receiver_pid, Some(9));
        assert!(h.from_json.is_none() && h.cmd.is_none());
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;

    #[test]
    fn escaped_routing_fields_are_read_too() {
        let h = Header::parse(r#"{"action":"a\"b","to":"\u0061gent"}"#).unwrap();
        assert_eq!(h.action.as_deref(), Some("a\"b"));
        assert_eq!(h.to.as_deref(), Some("agent"));
    }

    #[test]
    fn request_and_reply_ids_are_read_raw() {
        let h = Header::parse(r#"{"action":"a","requestId":"x-1","replyTo":7}"#).unwrap();
        assert_eq!(h.request_id.as_deref(), Some(r#""x-1""#));
        assert_eq!(h.reply_to.as_deref(), Some("7"));
        let h = Header::parse(r#"{"action":"a","data":{"requestId":1}}"#).unwrap();
        assert!(h.request_id.is_none() && h.reply_to.is_none());
    }

    #[test]
    fn a_null_from_is_present() {
        let h = Header::parse(r#"{"action":"a","from":null}"#).unwrap();
        assert_eq!(h.from_json.as_deref(), Some("null"));
        let h = Header::parse(r#"{"action":"a","from":"app"}"#).unwrap();
        assert_eq!(h.from_json.as_deref(), Some(r#""app""#));
    }

    #[test]
    fn invalid_json_anywhere_is_refused() {
        assert!(Header::parse(r#"{"action":"a","data":[1,,2]}"#).is_err());
        assert!(Header::parse(r#"{"action":"a"} trailing"#).is_err());
    }
}
