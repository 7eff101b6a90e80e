//! With --http-tls-cert and --http-tls-key, --http serves TLS (rustls), so the console may
//! be bound to a non-loopback address; the session cookie is then `Secure`.

mod common;
mod console_support;
mod http_support;
use common::*;
use console_support::*;
use std::io::{Read, Write};
use std::sync::Arc;

fn tls_request(port: u16, root: &rcgen::Certificate, request: &str) -> Answer {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    parse(&out)
}

#[test]
fn tls_serves_the_probes_and_a_secure_login() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(&dir, &[("ann", "admin")]);
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, key.cert.pem()).unwrap();
    std::fs::write(&key_path, key.signing_key.serialize_pem()).unwrap();

    let args = [
        "-w",
        "1",
        "--no-agent",
        "--http",
        "0.0.0.0:0",
        "--http-users",
        users.to_str().unwrap(),
        "--http-tls-cert",
        cert_path.to_str().unwrap(),
        "--http-tls-key",
        key_path.to_str().unwrap(),
        "--",
        fixture(),
    ];
    let mut c = Clutch::spawn_with_parent(clutch_start(&args));
    c.expect_ready(DEADLINE);
    let line = c
        .stderr
        .wait_for_line(DEADLINE, |l| l.contains("http on 0.0.0.0:"))
        .unwrap_or_else(|| panic!("{}", c.stderr.text()));
    assert!(line.contains("https://"), "{line}");
    let rest = &line[line.find("http on 0.0.0.0:").unwrap() + 16..];
    let port: u16 = rest
        .split(|ch: char| !ch.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let r = tls_request(
        port,
        &key.cert,
        "GET /livez HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"), "{r:?}");

    let body = serde_json::json!({"user": "ann", "password": PASSWORD}).to_string();
    let r = tls_request(
        port,
        &key.cert,
        &format!(
            "POST /login HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: https://localhost:{port}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let cookie = r.header("set-cookie").unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(part), "{cookie}");
    }

    // Plain HTTP on the TLS port gets no answer.
    let plain = http_support::raw(port, "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(!plain.starts_with("HTTP/1.1 200"), "{plain}");
    net::stop_cleanly(c);
}
