//! `clutch egg [BASEDIR]`: runs an egg.js app as egg-cluster's master would, with clutch as
//! the master. It finds egg-cluster's own `lib/agent_worker.js` and `lib/app_worker.js` and
//! the framework in the app's `node_modules` (then its parents', as Node resolves), builds
//! the options egg-cluster's master passes its workers (see egg-cluster's
//! `lib/utils/options.js` and `Master#detectPorts`), and starts the cluster in the egg
//! dialect (`--egg`, [`crate::master::names`]).

use crate::config::{self, ConfigError, ConfigFile, Overrides, Settings};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Why an egg app cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum EggError {
    #[error("{dir}: {message}")]
    NotAnEggApp { dir: PathBuf, message: String },
    #[error(
        "cannot find `{package}` in node_modules of {dir} or of its parents; run \
         `npm install {package}` in {dir}"
    )]
    NotInstalled { package: String, dir: PathBuf },
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("cannot find a free port for {what}: {source}")]
    Port {
        what: &'static str,
        source: std::io::Error,
    },
}

/// What `clutch egg` is given besides the usual flags.
#[derive(Debug, Clone, Default)]
pub struct EggApp {
    /// The app's directory (its package.json).
    pub base_dir: PathBuf,
    /// The framework: a package name or an absolute path [default: package.json's
    /// `egg.framework`, else `egg`].
    pub framework: Option<String>,
    /// The cluster's title (its name, and egg's `title` option).
    pub title: Option<String>,
    /// egg's server env (`EGG_SERVER_ENV`: local, prod, ...).
    pub env: Option<String>,
}

/// Where egg-cluster's pieces are for one app.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub base_dir: PathBuf,
    pub framework: PathBuf,
    pub agent_worker: PathBuf,
    pub app_worker: PathBuf,
}

/// The directory of package `name` as Node's `require` finds it from `dir`:
/// `dir/node_modules/name`, then each parent's.
pub fn resolve_package(dir: &Path, name: &str) -> Option<PathBuf> {
    dir.ancestors()
        .filter(|d| d.file_name() != Some("node_modules".as_ref()))
        .map(|d| d.join("node_modules").join(name))
        .find(|p| p.join("package.json").is_file())
}

/// Finds the framework and egg-cluster's workers for the app in `app.base_dir`.
pub fn locate(app: &EggApp) -> Result<Located, EggError> {
    let not_egg = |dir: &Path, message: String| EggError::NotAnEggApp {
        dir: dir.to_path_buf(),
        message,
    };
    let base = std::fs::canonicalize(&app.base_dir).map_err(|e| {
        not_egg(
            &app.base_dir,
            format!("cannot open the app's directory: {e}"),
        )
    })?;
    let pkg_path = base.join("package.json");
    let text = std::fs::read_to_string(&pkg_path).map_err(|e| {
        not_egg(
            &base,
            format!(
                "not an egg app: cannot read package.json ({e}); run clutch egg in the app's \
                 directory or pass it"
            ),
        )
    })?;
    let pkg: Value = serde_json::from_str(&text)
        .map_err(|e| not_egg(&base, format!("package.json is not valid JSON: {e}")))?;
    let configured = pkg["egg"]["framework"].as_str();
    let name = app
        .framework
        .as_deref()
        .or(configured)
        .unwrap_or("egg")
        .to_string();
    let depends = ["dependencies", "devDependencies"]
        .iter()
        .any(|k| pkg[k].get(&name).is_some());
    if !depends && pkg.get("egg").is_none() && app.framework.is_none() {
        return Err(not_egg(
            &base,
            format!(
                "not an egg app: package.json neither depends on `{name}` nor has an `egg` \
                 key; run `npm install {name}` there, or pass --framework"
            ),
        ));
    }
    let framework = if Path::new(&name).is_absolute() {
        PathBuf::from(&name)
    } else {
        resolve_package(&base, &name).ok_or_else(|| EggError::NotInstalled {
            package: name.clone(),
            dir: base.clone(),
        })?
    };
    let cluster = resolve_package(&base, "egg-cluster")
        .or_else(|| resolve_package(&framework, "egg-cluster"))
        .filter(|c| {
            c.join("lib/agent_worker.js").is_file() && c.join("lib/app_worker.js").is_file()
        })
        .ok_or_else(|| EggError::NotInstalled {
            package: "egg-cluster".into(),
            dir: base.clone(),
        })?;
    Ok(Located {
        agent_worker: cluster.join("lib/agent_worker.js"),
        app_worker: cluster.join("lib/app_worker.js"),
        framework,
        base_dir: base,
    })
}

/// The options egg-cluster's master gives its workers (`parseOptions` and `detectPorts`):
/// each worker gets them as its one argument, and `egg-ready` carries them.
pub fn options(located: &Located, s: &Settings, app: &EggApp, cluster_port: u16) -> Value {
    let mut o = json!({
        "framework": located.framework,
        "baseDir": located.base_dir,
        "port": s.port,
        "reusePort": false,
        "workers": s.workers,
        "plugins": null,
        "https": false,
        "startMode": "process",
        "ports": [],
        "env": app.env.clone().or_else(|| std::env::var("EGG_SERVER_ENV").ok()),
        "clusterPort": cluster_port,
    });
    if s.listen == config::ListenMode::Sticky {
        o["sticky"] = json!(true);
        // egg's app worker also listens on this loopback port in sticky mode, though the
        // master hands it every connection: 0 lets each worker bind one of its own, where
        // one shared number would fail with EADDRINUSE from the second worker on.
        o["stickyWorkerPort"] = json!(0);
    }
    if let Some(t) = &app.title {
        o["title"] = json!(t);
    }
    o
}

/// The settings of `clutch egg`: `flags` over the config `file`, then the egg app's
/// commands, the egg dialect, port 7001 unless given (egg's default), and with `--sticky`
/// egg-cluster's sticky message.
pub fn settings(
    app: &EggApp,
    mut flags: Overrides,
    file: Option<ConfigFile>,
) -> Result<Settings, EggError> {
    let own = |key: &str| {
        EggError::Config(ConfigError::Value {
            key: key.into(),
            message: "clutch egg runs egg-cluster's agent and app workers; use `clutch start` \
                      for commands of your own"
                .into(),
        })
    };
    if flags.app.is_some() || file.as_ref().is_some_and(|f| f.overrides.app.is_some()) {
        return Err(own("APP_CMD"));
    }
    if flags.agent.is_some() || flags.no_agent == Some(true) {
        return Err(own("--agent"));
    }
    let located = locate(app)?;
    flags.egg = Some(true);
    if flags.name.is_none() {
        flags.name.clone_from(&app.title);
    }
    let mut s = config::resolve(flags, file, |given| {
        let sticky = given.sticky == Some(true);
        Ok(Overrides {
            port: Some(7001),
            node_sticky_message: sticky.then(|| "sticky-session:connection".to_string()),
            ..Overrides::default()
        })
    })?;
    if s.listen == config::ListenMode::ReusePort {
        return Err(EggError::Config(ConfigError::Value {
            key: "--reuseport".into(),
            message: "egg's app workers bind the port without SO_REUSEPORT (Node before 22.12 \
                      has none); use the shared port (the default) or --sticky"
                .into(),
        }));
    }
    if s.port == Some(0) {
        // The workers are told the port in their options before the master binds it.
        s.port = Some(free_port(&s.host).map_err(|source| EggError::Port {
            what: "--port 0",
            source,
        })?);
    }
    let cluster_port = free_port("0.0.0.0").map_err(|source| EggError::Port {
        what: "egg's clusterPort",
        source,
    })?;
    let options = options(&located, &s, app, cluster_port);
    let argv = |script: &Path| {
        vec![
            "node".to_string(),
            script.to_string_lossy().into_owned(),
            options.to_string(),
        ]
    };
    s.agent = Some(argv(&located.agent_worker));
    s.app = Some(argv(&located.app_worker));
    s.egg_options = Some(options);
    s.validate()?;
    Ok(s)
}

/// A port free now, as egg-cluster's detect-port finds one: bind port 0 and let it go.
/// Another process may take it before the worker binds it.
fn free_port(host: &str) -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((host, 0))?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_dir(test: &str, pkg: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("clutch-egg-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("package.json"), pkg).unwrap();
        d
    }

    fn install(root: &Path, name: &str, files: &[&str]) {
        let d = root.join("node_modules").join(name);
        std::fs::create_dir_all(d.join("lib")).unwrap();
        std::fs::write(d.join("package.json"), "{}").unwrap();
        for f in files {
            std::fs::write(d.join(f), "").unwrap();
        }
    }

    #[test]
    fn a_directory_without_egg_is_refused_naming_it() {
        let d = app_dir("no-egg", r#"{"name": "x", "dependencies": {"koa": "2"}}"#);
        let app = EggApp {
            base_dir: d.clone(),
            ..EggApp::default()
        };
        let e = locate(&app).unwrap_err().to_string();
        assert!(
            e.contains("not an egg app") && e.contains("npm install egg"),
            "{e}"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn egg_cluster_missing_says_what_to_install() {
        let d = app_dir(
            "no-cluster",
            r#"{"name": "app", "dependencies": {"egg": "3"}}"#,
        );
        install(&d, "egg", &[]);
        let app = EggApp {
            base_dir: d.clone(),
            ..EggApp::default()
        };
        let e = locate(&app).unwrap_err().to_string();
        assert!(e.contains("npm install egg-cluster"), "{e}");
        // Found in a parent's node_modules, as Node would.
        let parent = d.join("..").canonicalize().unwrap();
        let sub = d.join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("package.json"), r#"{"egg": {}}"#).unwrap();
        install(
            &d,
            "egg-cluster",
            &["lib/agent_worker.js", "lib/app_worker.js"],
        );
        let l = locate(&EggApp {
            base_dir: sub,
            ..EggApp::default()
        })
        .unwrap();
        assert_eq!(
            l.framework,
            d.canonicalize().unwrap().join("node_modules/egg")
        );
        assert!(l.app_worker.ends_with("egg-cluster/lib/app_worker.js"));
        assert!(parent.is_dir());
        std::fs::remove_dir_all(d).unwrap();
    }
}
