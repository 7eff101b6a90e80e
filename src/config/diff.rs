//! What a reload changes: the settings the master runs with against the ones it re-read
//! (`--config` again, under the same flags), one [`Change`] per setting that differs, and
//! for each whether a reload can take it.
//!
//! A reload starts new workers, so what only a new worker reads is taken: the commands,
//! the environment, readiness, timeouts, heartbeats and recycling, the restart policy, the
//! line limit, `surge`. What the master set up once at its start is not: the port and how
//! it is shared, the control socket, the name, the pid file, egg mode, the monitor's
//! period, whether there is an agent at all. A change to one of those aborts the reload
//! before anything is touched ("needs a restart of the master"): a reload that quietly
//! kept the old port would look like it worked. The number of workers is the one
//! exception: `ctl scale` changes it at run time, so the file's count is only reported,
//! with the `scale` that would apply it.
//!
//! Values of environment variables whose name looks secret are never shown (the same rule
//! as `ctl inspect`'s).

use super::{ControlSocket, Dialect, ListenMode, ReadyMode, RestartPolicy, Settings};
use crate::control::procinfo::looks_secret;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// What a reload does with a changed setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// The new generation runs with it.
    Applied,
    /// Only a restart of the master can change it: the reload is refused.
    Restart,
    /// Not applied by a reload: `clutch ctl scale` does it.
    Scale,
}

/// One setting that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The key, as in a config file (`env NAME` for one variable).
    pub key: String,
    /// The running value (`None`: unset), already redacted when secret.
    pub before: Option<String>,
    /// The re-read value (`None`: unset), already redacted when secret.
    pub after: Option<String>,
    pub takes: Takes,
}

const REDACTED: &str = "<redacted>";

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".into());
        match (&self.before, &self.after) {
            (None, Some(a)) => write!(f, "{}: added {a}", self.key)?,
            (Some(b), None) => write!(f, "{}: removed (was {b})", self.key)?,
            (Some(b), Some(a)) if b == REDACTED && a == REDACTED => {
                write!(f, "{}: changed ({REDACTED})", self.key)?
            }
            (b, a) => write!(f, "{}: {} -> {}", self.key, show(b), show(a))?,
        }
        match self.takes {
            Takes::Applied => Ok(()),
            Takes::Restart => write!(f, " (needs a restart of the master)"),
            Takes::Scale => write!(
                f,
                " (not applied by a reload; `clutch ctl scale {}` does it)",
                show(&self.after)
            ),
        }
    }
}

impl Change {
    /// The change as `ctl reload --json` and `ctl watch` show it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "key": self.key,
            "before": self.before,
            "after": self.after,
            "applied": self.takes == Takes::Applied,
            "text": self.to_string(),
        })
    }
}

/// The settings in `new` that differ from `old`, in a stable order: the commands, then the
/// environment by name, then every other setting.
pub fn diff(old: &Settings, new: &Settings) -> Vec<Change> {
    // Every setting is compared below, or named here as one a reload need not compare: a
    // new field of `Settings` fails to compile until it is judged (applied or restart).
    let Settings {
        name: _,
        workers: _,
        app: _,
        agent: _,
        port: _,
        host: _,
        ready: _,
        agent_ready: _,
        ready_timeout: _,
        kill_timeout: _,
        heartbeat_timeout: _,
        max_rss: _,
        max_age: _,
        surge: _,
        restart: _,
        restart_limit: _,
        restart_window: _,
        pid_file: _,
        max_message_size: _,
        env: _,
        listen: _,
        sticky_mode: _,
        proxy_protocol: _,
        proxy_timeout: _,
        app_dialect: _,
        node_sticky_message: _,
        egg: _,
        egg_options: _,
        node_preload: _,
        control: _,
        control_users: _,
        monitor_interval: _,
        http: _,
        ready_minimum: _,
        subreaper: _,
        output: _,
        http_users: _,
        http_tls_cert: _,
        http_tls_key: _,
    } = new;
    let mut out = Vec::new();
    let mut push = |key: &str, before: Option<String>, after: Option<String>, takes| {
        if before != after {
            out.push(Change {
                key: key.to_string(),
                before,
                after,
                takes,
            });
        }
    };
    push("app", command(&old.app), command(&new.app), Takes::Applied);
    let agent_takes = if old.agent.is_some() == new.agent.is_some() {
        Takes::Applied
    } else {
        // The agent's slot, and the apps' start after `agent-start`, are set up once.
        Takes::Restart
    };
    push(
        "agent",
        command(&old.agent),
        command(&new.agent),
        agent_takes,
    );
    let (before, after) = (env_map(&old.env), env_map(&new.env));
    let names: std::collections::BTreeSet<&String> =
        before.keys().chain(after.keys()).copied().collect();
    for name in names {
        let shown = |v: Option<&&String>| {
            v.map(|v| match looks_secret(name) {
                true => REDACTED.to_string(),
                false => v.to_string(),
            })
        };
        // Compared as they are: two different secrets both show as <redacted>.
        if before.get(name) != after.get(name) {
            out.push(Change {
                key: format!("env {name}"),
                before: shown(before.get(name)),
                after: shown(after.get(name)),
                takes: Takes::Applied,
            });
        }
    }
    let mut push = |key: &str, before: String, after: String, takes| {
        if before != after {
            out.push(Change {
                key: key.to_string(),
                before: Some(before),
                after: Some(after),
                takes,
            });
        }
    };
    use Takes::{Applied, Restart};
    push(
        "workers",
        old.workers.to_string(),
        new.workers.to_string(),
        Takes::Scale,
    );
    push("ready", ready(old.ready), ready(new.ready), Applied);
    push(
        "agent-ready",
        opt(old.agent_ready.map(ready)),
        opt(new.agent_ready.map(ready)),
        Applied,
    );
    push(
        "ready-timeout",
        ms(old.ready_timeout),
        ms(new.ready_timeout),
        Applied,
    );
    push(
        "kill-timeout",
        ms(old.kill_timeout),
        ms(new.kill_timeout),
        Applied,
    );
    push(
        "heartbeat-timeout",
        opt(old.heartbeat_timeout.map(ms)),
        opt(new.heartbeat_timeout.map(ms)),
        Applied,
    );
    push(
        "max-rss",
        opt(old.max_rss.map(|b| format!("{} MB", b >> 20))),
        opt(new.max_rss.map(|b| format!("{} MB", b >> 20))),
        Applied,
    );
    push(
        "max-age",
        opt(old.max_age.map(|d| format!("{} s", d.as_secs()))),
        opt(new.max_age.map(|d| format!("{} s", d.as_secs()))),
        Applied,
    );
    push("restart", policy(old.restart), policy(new.restart), Applied);
    push(
        "restart-limit",
        old.restart_limit.to_string(),
        new.restart_limit.to_string(),
        Applied,
    );
    push(
        "restart-window",
        ms(old.restart_window),
        ms(new.restart_window),
        Applied,
    );
    push(
        "max-message-size",
        old.max_message_size.to_string(),
        new.max_message_size.to_string(),
        Applied,
    );
    push(
        "surge",
        opt(old.surge.map(|n| n.to_string())),
        opt(new.surge.map(|n| n.to_string())),
        Applied,
    );
    push(
        "no-node-preload",
        (!old.node_preload).to_string(),
        (!new.node_preload).to_string(),
        Applied,
    );
    push("name", old.name.clone(), new.name.clone(), Restart);
    push(
        "port",
        opt(old.port.map(|p| p.to_string())),
        opt(new.port.map(|p| p.to_string())),
        Restart,
    );
    push("host", old.host.clone(), new.host.clone(), Restart);
    push("listen", listen(old.listen), listen(new.listen), Restart);
    push(
        "proxy-protocol",
        old.proxy_protocol.to_string(),
        new.proxy_protocol.to_string(),
        Restart,
    );
    push(
        "proxy-timeout",
        ms(old.proxy_timeout),
        ms(new.proxy_timeout),
        Restart,
    );
    // In sticky mode the master hands sockets over in the app's dialect, chosen at start
    // (with `auto`, from the app command: a switch between node and not is a restart).
    if old.listen == ListenMode::Sticky || new.listen == ListenMode::Sticky {
        let dialect =
            |s: &Settings| dialect(s.app_dialect.resolve(s.app.as_deref().unwrap_or_default()));
        push("app-dialect", dialect(old), dialect(new), Restart);
    } else {
        push(
            "app-dialect",
            self::dialect(old.app_dialect),
            self::dialect(new.app_dialect),
            Applied,
        );
    }
    push(
        "node-sticky-message",
        opt(old.node_sticky_message.clone()),
        opt(new.node_sticky_message.clone()),
        Restart,
    );
    push("egg", old.egg.to_string(), new.egg.to_string(), Restart);
    push(
        "egg options",
        opt(old.egg_options.as_ref().map(|v| v.to_string())),
        opt(new.egg_options.as_ref().map(|v| v.to_string())),
        Restart,
    );
    push(
        "control-socket",
        control(&old.control),
        control(&new.control),
        Restart,
    );
    push(
        "control-users",
        opt(old.control_users.as_ref().map(|p| p.display().to_string())),
        opt(new.control_users.as_ref().map(|p| p.display().to_string())),
        Restart,
    );
    push(
        "pid-file",
        opt(old.pid_file.as_ref().map(|p| p.display().to_string())),
        opt(new.pid_file.as_ref().map(|p| p.display().to_string())),
        Restart,
    );
    push(
        "http",
        opt(old.http.clone()),
        opt(new.http.clone()),
        Restart,
    );
    // `/readyz` reads it from the core's settings at each request.
    push(
        "ready-minimum",
        opt(old.ready_minimum.map(|n| n.to_string())),
        opt(new.ready_minimum.map(|n| n.to_string())),
        Applied,
    );
    // Set up once, when the master starts: the listener group, the reaper, the output
    // pipes' readers, the console's TLS.
    push(
        "sticky-mode",
        format!("{:?}", old.sticky_mode).to_lowercase(),
        format!("{:?}", new.sticky_mode).to_lowercase(),
        Restart,
    );
    push(
        "subreaper",
        old.subreaper.to_string(),
        new.subreaper.to_string(),
        Restart,
    );
    push(
        "output",
        format!("{:?}", old.output).to_lowercase(),
        format!("{:?}", new.output).to_lowercase(),
        Restart,
    );
    let path = |p: &Option<std::path::PathBuf>| opt(p.as_ref().map(|p| p.display().to_string()));
    push(
        "http-users",
        path(&old.http_users),
        path(&new.http_users),
        Restart,
    );
    push(
        "http-tls-cert",
        path(&old.http_tls_cert),
        path(&new.http_tls_cert),
        Restart,
    );
    push(
        "http-tls-key",
        path(&old.http_tls_key),
        path(&new.http_tls_key),
        Restart,
    );
    push(
        "monitor-interval",
        ms(old.monitor_interval),
        ms(new.monitor_interval),
        Restart,
    );
    out
}

/// The changes only a restart of the master can make, as one sentence; `None` when a
/// reload can take them all.
pub fn needs_restart(changes: &[Change]) -> Option<String> {
    let fixed: Vec<String> = changes
        .iter()
        .filter(|c| c.takes == Takes::Restart)
        .map(|c| {
            let mut c = c.clone();
            c.takes = Takes::Applied;
            c.to_string()
        })
        .collect();
    (!fixed.is_empty()).then(|| {
        format!(
            "a reload cannot apply {}: it needs a restart of the master. Nothing was changed; \
             put it back in the config to reload, or restart the master to apply it",
            fixed.join("; ")
        )
    })
}

/// The environment as a worker sees it: the last value of a name wins.
fn env_map(env: &[(String, String)]) -> BTreeMap<&String, &String> {
    env.iter().map(|(k, v)| (k, v)).collect()
}

fn command(c: &Option<Vec<String>>) -> Option<String> {
    c.as_ref().map(shell_words::join)
}

fn opt(v: Option<String>) -> String {
    v.unwrap_or_else(|| "off".into())
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn ready(m: ReadyMode) -> String {
    match m {
        ReadyMode::Message => "message".into(),
        ReadyMode::Spawn => "spawn".into(),
        ReadyMode::Notify => "notify".into(),
        ReadyMode::Delay(d) => format!("delay:{}", d.as_millis()),
        ReadyMode::Tcp(p) => format!("tcp:{p}"),
    }
}

fn policy(p: RestartPolicy) -> String {
    match p {
        RestartPolicy::Always => "always",
        RestartPolicy::OnFailure => "on-failure",
        RestartPolicy::Never => "never",
    }
    .into()
}

fn listen(l: ListenMode) -> String {
    match l {
        ListenMode::Shared => "shared",
        ListenMode::Sticky => "sticky",
        ListenMode::ReusePort => "reuseport",
    }
    .into()
}

fn dialect(d: Dialect) -> String {
    match d {
        Dialect::Auto => "auto",
        Dialect::Node => "node",
        Dialect::Clutch => "clutch",
    }
    .into()
}

fn control(c: &ControlSocket) -> String {
    match c {
        ControlSocket::Off => "off".into(),
        ControlSocket::Default => "default".into(),
        ControlSocket::At(p) => p.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Settings {
        Settings {
            app: Some(vec!["server".into(), "--v1".into()]),
            env: vec![
                ("MODE".into(), "a".into()),
                ("DB_PASSWORD".into(), "s1".into()),
            ],
            port: Some(7001),
            ..Settings::default()
        }
    }

    #[test]
    fn the_same_settings_make_no_change() {
        assert!(diff(&base(), &base()).is_empty());
    }

    #[test]
    fn a_new_command_and_env_are_applied_and_shown() {
        let mut new = base();
        new.app = Some(vec!["server".into(), "--v2".into()]);
        new.env = vec![("MODE".into(), "b".into()), ("EXTRA".into(), "1".into())];
        let changes = diff(&base(), &new);
        let text: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            text,
            [
                "app: server --v1 -> server --v2",
                "env DB_PASSWORD: removed (was <redacted>)",
                "env EXTRA: added 1",
                "env MODE: a -> b",
            ]
        );
        assert!(changes.iter().all(|c| c.takes == Takes::Applied));
        assert_eq!(needs_restart(&changes), None);
    }

    #[test]
    fn a_secrets_value_is_never_shown() {
        let mut new = base();
        new.env[1].1 = "s2".into();
        let changes = diff(&base(), &new);
        assert_eq!(changes.len(), 1);
        let shown = format!("{} {}", changes[0], changes[0].to_json());
        assert!(!shown.contains("s1") && !shown.contains("s2"), "{shown}");
        assert_eq!(
            changes[0].to_string(),
            "env DB_PASSWORD: changed (<redacted>)"
        );
    }

    #[test]
    fn the_last_value_of_a_variable_is_the_one_compared() {
        let mut new = base();
        new.env.push(("MODE".into(), "a".into()));
        let mut old = base();
        old.env.push(("MODE".into(), "z".into()));
        assert_eq!(diff(&old, &new)[0].to_string(), "env MODE: z -> a");
    }

    #[test]
    fn worker_settings_are_applied() {
        let mut new = base();
        new.ready = ReadyMode::Delay(Duration::from_millis(50));
        new.kill_timeout = Duration::from_millis(100);
        new.heartbeat_timeout = Some(Duration::from_millis(900));
        new.surge = Some(2);
        let changes = diff(&base(), &new);
        let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(
            keys,
            ["ready", "kill-timeout", "heartbeat-timeout", "surge"]
        );
        assert!(changes.iter().all(|c| c.takes == Takes::Applied));
        assert_eq!(changes[0].to_string(), "ready: message -> delay:50");
        assert_eq!(changes[2].to_string(), "heartbeat-timeout: off -> 900 ms");
    }

    #[test]
    fn what_the_master_set_up_at_start_needs_a_restart() {
        let mut new = base();
        new.port = Some(8080);
        new.listen = ListenMode::Sticky;
        new.name = "other".into();
        let changes = diff(&base(), &new);
        assert!(
            changes.iter().all(|c| c.takes == Takes::Restart),
            "{changes:?}"
        );
        let why = needs_restart(&changes).unwrap();
        assert!(why.contains("port: 7001 -> 8080"), "{why}");
        assert!(why.contains("name: clutch -> other"), "{why}");
        assert!(why.contains("needs a restart of the master"), "{why}");
    }

    #[test]
    fn adding_an_agent_needs_a_restart_changing_its_command_does_not() {
        let mut old = base();
        old.agent = Some(vec!["agent".into()]);
        let mut new = old.clone();
        new.agent = Some(vec!["agent".into(), "-v".into()]);
        assert_eq!(diff(&old, &new)[0].takes, Takes::Applied);
        assert_eq!(diff(&base(), &new)[0].takes, Takes::Restart);
    }

    #[test]
    fn sticky_mode_keeps_the_dialect_it_started_with() {
        let mut old = base();
        old.listen = ListenMode::Sticky;
        let mut new = old.clone();
        new.app = Some(vec!["node".into(), "server.js".into()]);
        let changes = diff(&old, &new);
        let dialect = changes.iter().find(|c| c.key == "app-dialect").unwrap();
        assert_eq!(dialect.takes, Takes::Restart);
        assert_eq!(
            dialect.to_string(),
            "app-dialect: clutch -> node (needs a restart of the master)"
        );
    }

    #[test]
    fn a_new_worker_count_is_only_reported() {
        let mut new = base();
        new.workers = base().workers + 1;
        let changes = diff(&base(), &new);
        assert_eq!(changes[0].takes, Takes::Scale);
        assert!(
            changes[0].to_string().contains("clutch ctl scale"),
            "{}",
            changes[0]
        );
        assert_eq!(needs_restart(&changes), None);
    }

    #[test]
    fn what_is_set_up_at_start_needs_a_restart() {
        let old = base();
        let new = Settings {
            sticky_mode: crate::config::StickyMode::Handoff,
            subreaper: true,
            output: crate::config::OutputMode::Prefix,
            http_users: Some("/etc/clutch/users.json".into()),
            http_tls_cert: Some("/etc/clutch/cert.pem".into()),
            http_tls_key: Some("/etc/clutch/key.pem".into()),
            ..old.clone()
        };
        let changes = diff(&old, &new);
        let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
        for key in [
            "sticky-mode",
            "subreaper",
            "output",
            "http-users",
            "http-tls-cert",
            "http-tls-key",
        ] {
            assert!(keys.contains(&key), "{key} not in {keys:?}");
        }
        assert!(
            changes.iter().all(|c| c.takes == Takes::Restart),
            "{changes:?}"
        );
        assert!(needs_restart(&changes).is_some());
    }
}
