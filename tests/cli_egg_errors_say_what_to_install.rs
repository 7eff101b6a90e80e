//! `clutch egg` on a directory that is not an egg app, or whose egg or egg-cluster is not
//! installed, exits 2 with a message naming the directory and what to `npm install`.

mod common;
use common::*;

fn clutch_egg(dir: &std::path::Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(clutch_bin())
        .arg("egg")
        .arg(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn not_an_egg_app() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = clutch_egg(dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("not an egg app") && err.contains("package.json"),
        "{err}"
    );
}

#[test]
fn egg_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("package.json"),
        r#"{"dependencies": {"egg": "3"}}"#,
    )
    .unwrap();
    let (code, err) = clutch_egg(dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("npm install egg`"), "{err}");
}

#[test]
fn egg_cluster_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("package.json"),
        r#"{"dependencies": {"egg": "3"}}"#,
    )
    .unwrap();
    let egg = dir.path().join("node_modules/egg");
    std::fs::create_dir_all(&egg).unwrap();
    std::fs::write(egg.join("package.json"), "{}").unwrap();
    let (code, err) = clutch_egg(dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("npm install egg-cluster"), "{err}");
}
