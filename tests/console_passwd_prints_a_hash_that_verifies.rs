//! `clutch passwd` reads a password from stdin (not a terminal) and prints an argon2id PHC
//! hash that verifies it, and nothing else on stdout.

mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn passwd(input: &str) -> std::process::Output {
    let mut child = Command::new(clutch_bin())
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_printed_hash_verifies_the_password() {
    use argon2::{Argon2, PasswordHash, PasswordVerifier};
    let out = passwd("s3cret pass\n");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let hash = stdout.trim_end();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!stdout.contains("s3cret"));
    let parsed = PasswordHash::new(hash).unwrap();
    assert!(
        Argon2::default()
            .verify_password(b"s3cret pass", &parsed)
            .is_ok()
    );
    assert!(
        Argon2::default()
            .verify_password(b"s3cret", &parsed)
            .is_err()
    );

    let out = passwd("");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
}
