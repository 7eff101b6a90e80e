//! A config file is one JSON object and nothing else: an array (which serde would read by
//! position), a bare value, or anything after the object exits 2 naming the file.

mod common;
use common::*;

/// `clutch start --config FILE -w 1 --no-agent -- fixture` with `text` in FILE: expects
/// exit code 2 and returns stderr.
fn config_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clutch.json");
    std::fs::write(&path, text).unwrap();
    let config = path.to_str().unwrap();
    let mut c = Clutch::spawn(clutch_start(&[
        "--config",
        config,
        "-w",
        "1",
        "--no-agent",
        "--",
        fixture(),
    ]));
    let status = c.finish(DEADLINE);
    let stderr = c.stderr.text();
    assert_eq!(status.code(), Some(2), "for {text:?}; stderr:\n{stderr}");
    assert!(stderr.contains(config), "{stderr}");
    stderr
}

#[test]
fn text_after_the_object_exits_2() {
    let stderr = config_error(r#"{"workers": 1}garbage"#);
    assert!(stderr.contains("follows the settings object"), "{stderr}");
    let stderr = config_error(r#"{"workers": 1} {"workers": 2}"#);
    assert!(stderr.contains("follows the settings object"), "{stderr}");
}

#[test]
fn an_array_exits_2_saying_it_must_be_an_object() {
    let app = serde_json::json!([fixture()]).to_string();
    for text in ["[]", &format!("[null, 1, {app}]")] {
        let stderr = config_error(text);
        assert!(stderr.contains("must be a JSON object"), "{stderr}");
    }
}

#[test]
fn a_bare_value_or_an_empty_file_exits_2_saying_it_must_be_an_object() {
    for text in ["", "  ", "null", "4", r#""workers""#] {
        let stderr = config_error(text);
        assert!(stderr.contains("must be a JSON object"), "{stderr}");
    }
}
