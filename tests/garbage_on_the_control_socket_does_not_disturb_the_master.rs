//! Garbage, a request line of 1 MB and a flood of connections on the control socket are
//! answered with errors or closed; the master and its workers carry on.

mod common;
use common::ctl;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn connect(c: &ctl::CtlCluster) -> UnixStream {
    let s = UnixStream::connect(&c.socket).unwrap();
    s.set_read_timeout(Some(common::DEADLINE)).unwrap();
    s
}

#[test]
fn garbage_does_not_disturb_the_master() {
    let c = ctl::start(1, &[]);
    let before = c.ctl_json(&["list", "--json"]);

    let mut s = connect(&c);
    s.write_all(b"\xff\xfe not json at all\n{\"id\":7,\"cmd\":\"rm\"}\n{\"id\":8,\"cmd\":\"restart\",\"args\":{\"target\":\"99\"}}\n{\"id\":9,\"cmd\":\"list\"}\n")
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut answers = Vec::new();
    for _ in 0..4 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        answers.push(serde_json::from_str::<serde_json::Value>(&line).unwrap());
    }
    assert_eq!(answers[0]["ok"], false);
    assert!(
        answers[0]["error"]
            .as_str()
            .unwrap()
            .contains("not a request")
    );
    assert_eq!(answers[1]["id"], 7);
    assert!(
        answers[1]["error"]
            .as_str()
            .unwrap()
            .contains("not a command")
    );
    assert_eq!(answers[2]["id"], 8);
    assert!(answers[2]["error"].as_str().unwrap().contains("no slot 99"));
    assert_eq!(answers[3]["id"], 9);
    assert_eq!(answers[3]["ok"], true);

    // 1 MB with no newline: refused at 64 KiB and closed.
    let mut s = connect(&c);
    let _ = s.write_all(&vec![b'x'; 1 << 20]);
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.contains("request too long"), "{reply}");

    // More connections than the master serves at once: the extra ones are told so.
    let held: Vec<UnixStream> = (0..80).map(|_| connect(&c)).collect();
    let mut extra = connect(&c);
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reply = String::new();
    let _ = extra.read_to_string(&mut reply);
    assert!(reply.contains("too many control connections"), "{reply}");
    drop(held);

    let after = c.wait_for(
        |l| l["cluster"]["state"] == "ready",
        "the master still answering",
    );
    assert_eq!(ctl::row(&after, 1)["pid"], ctl::row(&before, 1)["pid"]);
    assert!(common::alive(c.clutch.pid()));
}
