//! `examples/kubernetes.yaml` probes `/readyz` and `/livez` on the port `--http` listens
//! on, gives the pod more than twice `--kill-timeout` to stop (the app workers', then the
//! agent's), and asks Prometheus to scrape `/metrics` there; `examples/Dockerfile` runs
//! clutch as PID 1 (exec-form ENTRYPOINT) with the same ports. Read as text: no YAML
//! parser is a dependency of clutch.

fn example(name: &str) -> String {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The value after `key:` on its first line in `text`, unquoted.
fn value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().trim_matches('"'))
        .next()
        .unwrap_or_else(|| panic!("no {key}: in\n{text}"))
}

/// The value of `--flag=VALUE` among the container's args.
fn arg<'a>(text: &'a str, flag: &str) -> &'a str {
    text.lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("- ")?
                .strip_prefix(flag)?
                .strip_prefix('=')
        })
        .next()
        .unwrap_or_else(|| panic!("no {flag}= in the args"))
}

#[test]
fn examples_kubernetes_probes_and_grace_period_fit_clutch() {
    let k8s = example("kubernetes.yaml");
    let http = arg(&k8s, "--http");
    let metrics_port = http.rsplit_once(':').unwrap().1;
    assert_eq!(value(&k8s, "prometheus.io/scrape"), "true");
    assert_eq!(value(&k8s, "prometheus.io/port"), metrics_port);
    assert_eq!(value(&k8s, "prometheus.io/path"), "/metrics");
    let probe = |name: &str| {
        let from = k8s
            .find(&format!("{name}:"))
            .unwrap_or_else(|| panic!("no {name}"));
        let block = &k8s[from..];
        (
            value(block, "path").to_string(),
            value(block, "port").to_string(),
        )
    };
    let port_named = |name: &str| {
        let at = k8s.find(&format!("- name: {name}")).unwrap();
        value(&k8s[at..], "containerPort").to_string()
    };
    let (path, port) = probe("readinessProbe");
    assert_eq!(
        (path.as_str(), port_named(&port).as_str()),
        ("/readyz", metrics_port)
    );
    let (path, port) = probe("livenessProbe");
    assert_eq!(
        (path.as_str(), port_named(&port).as_str()),
        ("/livez", metrics_port)
    );
    let grace: u64 = value(&k8s, "terminationGracePeriodSeconds")
        .parse()
        .unwrap();
    let kill_ms: u64 = arg(&k8s, "--kill-timeout").parse().unwrap();
    assert!(
        grace * 1000 > 2 * kill_ms,
        "{grace} s for --kill-timeout {kill_ms} ms"
    );

    let docker = example("Dockerfile");
    let entry = docker
        .lines()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("an ENTRYPOINT");
    assert!(
        entry.starts_with("[\""),
        "exec form, so clutch is PID 1: {entry}"
    );
    assert!(
        docker.contains(&format!("\"0.0.0.0:{metrics_port}\"")),
        "{docker}"
    );
}
