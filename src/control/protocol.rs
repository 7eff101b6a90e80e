//! The control protocol: JSON lines. A request is `{"id":N,"cmd":"list","args":{...}}`; its
//! answer `{"id":N,"ok":true,"result":...}` or `{"id":N,"ok":false,"error":"..."}`; `watch`
//! streams `{"id":N,"event":{...}}` lines. See docs/CONTROL.md.

use super::{Cmd, Scale, Target};
use crate::sys::process::Signal;
use serde::Deserialize;
use serde_json::{Value, json};

/// The longest request line: a hostile local user must not grow the master.
pub const MAX_REQUEST: usize = 64 * 1024;

/// `stats`: how many actions it lists unless told.
pub const DEFAULT_TOP: usize = 10;

/// `logs`: how many lines per worker unless told.
pub const DEFAULT_LOG_LINES: usize = 20;

/// `request`: how long the master waits for the reply unless told.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 5_000;

/// At most this many control connections at once; past it, new ones are told so and closed.
pub const MAX_CONNECTIONS: usize = 64;

/// A request as it arrives.
#[derive(Debug, Deserialize)]
pub struct Request {
    pub id: u64,
    pub cmd: String,
    #[serde(default)]
    pub args: Value,
}

impl Request {
    /// Reads a request line; an error says what is wrong with it.
    pub fn parse(line: &[u8]) -> Result<Request, String> {
        serde_json::from_slice(line).map_err(|e| {
            format!(
                "not a request ({e}); send one JSON object per line, as in \
                 {{\"id\":1,\"cmd\":\"list\"}}"
            )
        })
    }

    /// The command it asks for, with its arguments checked.
    pub fn command(&self) -> Result<Cmd, String> {
        let target = || -> Result<Target, String> { self.str_arg("target")?.parse() };
        Ok(match self.cmd.as_str() {
            "list" | "ls" => Cmd::List,
            "inspect" => Cmd::Inspect(target()?),
            "stats" => Cmd::Stats {
                top: match self.args.get("top") {
                    None | Some(Value::Null) => DEFAULT_TOP,
                    Some(v) => v.as_u64().ok_or("`top` must be a count")? as usize,
                },
            },
            "watch" => Cmd::Watch,
            "logs" => Cmd::Logs {
                target: match self.args.get("target") {
                    None | Some(Value::Null) => Target::All,
                    Some(_) => target()?,
                },
                lines: match self.args.get("lines") {
                    None | Some(Value::Null) => DEFAULT_LOG_LINES,
                    Some(v) => v.as_u64().ok_or("`lines` must be a count")? as usize,
                },
                follow: self.args.get("follow").and_then(Value::as_bool) == Some(true),
            },
            "restart" => Cmd::Restart(target()?),
            "stop" => Cmd::Stop(target()?),
            "start" => Cmd::Start(target()?),
            "scale" => Cmd::Scale(match &self.args["workers"] {
                Value::Number(n) => {
                    Scale::To(n.as_u64().ok_or("`workers` must be a count")? as usize)
                }
                _ => self.str_arg("workers")?.parse()?,
            }),
            "kill" => Cmd::Kill(
                target()?,
                match self.args.get("signal") {
                    None | Some(Value::Null) => Signal::SIGKILL,
                    Some(_) => parse_signal(self.str_arg("signal")?)?,
                },
            ),
            "signal" => Cmd::Signal(parse_signal(self.str_arg("signal")?)?, target()?),
            "send" => {
                let msg = self.args.get("message").filter(|m| m.is_object()).ok_or(
                    "`send` needs args.message: a message object, as in {\"action\":\"x\"}",
                )?;
                Cmd::Send(serde_json::to_vec(msg).expect("a Value serializes"))
            }
            "request" => {
                let msg = self.args.get("message").filter(|m| m.is_object()).ok_or(
                    "`request` needs args.message: a message object, as in \
                     {\"action\":\"x\",\"to\":\"agent\"}",
                )?;
                let mut msg = msg.clone();
                if msg.get("requestId").is_none_or(Value::is_null) {
                    msg["requestId"] = Value::from(self.id);
                }
                let timeout = match self.args.get("timeout_ms") {
                    None | Some(Value::Null) => DEFAULT_REQUEST_TIMEOUT_MS,
                    Some(v) => v
                        .as_u64()
                        .filter(|ms| *ms > 0)
                        .ok_or("`timeout_ms` must be a number of ms above 0")?,
                };
                Cmd::Request {
                    line: serde_json::to_vec(&msg).expect("a Value serializes"),
                    timeout: std::time::Duration::from_millis(timeout),
                }
            }
            "reload" => Cmd::Reload {
                batch: match &self.args["batch"] {
                    Value::Null => super::Batch::Count(1),
                    Value::Number(n) => super::Batch::Count(
                        n.as_u64()
                            .filter(|n| *n > 0)
                            .ok_or("`batch` must be a count or a percentage")?
                            as usize,
                    ),
                    _ => self.str_arg("batch")?.parse()?,
                },
                surge: match &self.args["surge"] {
                    Value::Null => None,
                    n => Some(
                        n.as_u64()
                            .filter(|n| *n > 0)
                            .ok_or("`surge` must be a count of at least 1")?
                            as usize,
                    ),
                },
            },
            "shutdown" => Cmd::Shutdown,
            other => {
                return Err(format!(
                    "`{other}` is not a command; use list, inspect, stats, watch, logs, \
                     restart, stop, start, scale, kill, signal, send, request, reload or \
                     shutdown"
                ));
            }
        })
    }

    fn str_arg(&self, key: &str) -> Result<&str, String> {
        self.args
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("`{}` needs args.{key} (a string)", self.cmd))
    }
}

/// A signal by name (`USR2`, `SIGUSR2`) or number.
pub fn parse_signal(s: &str) -> Result<Signal, String> {
    let bad = || format!("`{s}` is not a signal; use a name such as TERM, USR2 or KILL");
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().map_err(|_| bad())
}

/// `{"id":N,"ok":true,"result":...}` and a newline.
pub fn ok_line(id: u64, result: Value) -> Vec<u8> {
    line(&json!({"id": id, "ok": true, "result": result}))
}

/// `{"id":N,"ok":false,"error":"..."}` and a newline.
pub fn error_line(id: u64, error: &str) -> Vec<u8> {
    line(&json!({"id": id, "ok": false, "error": error}))
}

/// The event line that tells a follower (`watch`, `logs -f`) it fell `missed` items behind.
pub fn lagged_line(id: u64, missed: u64) -> Vec<u8> {
    event_line(id, &format!("{{\"event\":\"lagged\",\"missed\":{missed}}}"))
}

/// `{"id":N,"event":EVENT}` and a newline; `event` is already JSON.
pub fn event_line(id: u64, event: &str) -> Vec<u8> {
    format!("{{\"id\":{id},\"event\":{event}}}\n").into_bytes()
}

fn line(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).expect("a Value serializes");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(json: &str) -> Result<Cmd, String> {
        Request::parse(json.as_bytes())?.command()
    }

    #[test]
    fn requests_parse_into_commands() {
        assert!(matches!(cmd(r#"{"id":1,"cmd":"ls"}"#), Ok(Cmd::List)));
        assert!(matches!(
            cmd(r#"{"id":1,"cmd":"restart","args":{"target":"pid:7"}}"#),
            Ok(Cmd::Restart(Target::Pid(7)))
        ));
        assert!(matches!(
            cmd(r#"{"id":1,"cmd":"scale","args":{"workers":"-2"}}"#),
            Ok(Cmd::Scale(Scale::Down(2)))
        ));
        assert!(matches!(
            cmd(r#"{"id":1,"cmd":"kill","args":{"target":"app"}}"#),
            Ok(Cmd::Kill(Target::App, Signal::SIGKILL))
        ));
        assert!(matches!(
            cmd(r#"{"id":1,"cmd":"signal","args":{"target":"1","signal":"usr2"}}"#),
            Ok(Cmd::Signal(Signal::SIGUSR2, Target::Slot(1)))
        ));
        assert!(
            cmd(r#"{"id":1,"cmd":"restart"}"#)
                .unwrap_err()
                .contains("args.target")
        );
        assert!(
            cmd(r#"{"id":1,"cmd":"rm -rf"}"#)
                .unwrap_err()
                .contains("not a command")
        );
        assert!(cmd("garbage").unwrap_err().contains("not a request"));
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("TERM"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("SIGHUP"), Ok(Signal::SIGHUP));
        assert_eq!(parse_signal("9"), Ok(Signal::SIGKILL));
        assert!(parse_signal("NOPE").is_err());
    }
}
