//! `--http` serves `/metrics`, `/livez` and `/readyz` to GET and HEAD only: other paths
//! are 404, other methods 405, and a request head past the bound is refused.

mod common;
mod http_support;
use common::*;
use http_support::*;

#[test]
fn other_paths_methods_and_oversized_heads_are_refused() {
    let (c, port) = start_with_http(1, &[], &[]);
    let r = get(port, "/livez");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"), "{r:?}");

    let r = get(port, "/nope");
    assert_eq!(r.status, 404, "{r:?}");
    assert!(r.body.contains("/metrics"), "{r:?}");

    let r = raw(port, "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    assert!(r.to_ascii_lowercase().contains("allow: get, head"), "{r}");

    let r = raw(port, "HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let (_, body) = r.split_once("\r\n\r\n").expect("a whole head");
    assert!(body.is_empty(), "HEAD got a body: {body:?}");

    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let r = raw(port, &big);
    assert!(!r.starts_with("HTTP/1.1 200"), "a 64 KiB head was served: {:.80}", r);

    net::stop_cleanly(c);
}
