//! Live reload: an edited policy file applies without a restart; a broken
//! one is refused, the last good policy keeps enforcing, and the error shows
//! in /config_dump.

mod common;

use std::time::Duration;

use portcullis_tests::*;

/// Policy edits apply within this.
const RELOAD: Duration = Duration::from_secs(10);

#[test]
fn edited_policy_applies_live_and_broken_policy_keeps_last_good() {
    let e = common::echo();
    assert_eq!(curl(&[&e.url("/public/a")]).status, 200);
    assert_eq!(curl(&[&e.url("/private/a")]).status, 403);

    // Edit: now /private is allowed and /public is not.
    let edited = common::echo_policy(e.origin).replace("/public/.*", "/private/.*");
    std::fs::write(e.pc.path("policy.yaml"), &edited).unwrap();
    wait_until("the edited policy to apply", RELOAD, || {
        curl(&[&e.url("/private/a")]).status == 200
    });
    assert_eq!(curl(&[&e.url("/public/a")]).status, 403);

    // Break it: a misspelled field. The last good policy keeps enforcing.
    std::fs::write(
        e.pc.path("policy.yaml"),
        edited.replace("method: GET", "methd: GET"),
    )
    .unwrap();
    wait_until("the rejection to show", RELOAD, || {
        let (_, dump) = e.pc.admin_get("/config_dump");
        dump.contains("methd")
    });
    assert_eq!(curl(&[&e.url("/private/a")]).status, 200);
    assert_eq!(curl(&[&e.url("/public/a")]).status, 403);
    let (_, dump) = e.pc.admin_get("/config_dump");
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let err = dump["last_rejection"]["error"].as_str().unwrap();
    assert!(
        err.contains("policy.yaml") && err.contains("methd"),
        "{err}"
    );
    assert!(e.pc.metric("portcullis_policy_updates_total{result=\"rejected\"}") >= 1.0);
    assert!(e.pc.log().contains("policy rejected"), "{}", e.pc.log());

    // An invalid regex is refused the same way.
    std::fs::write(
        e.pc.path("policy.yaml"),
        edited.replace("/private/.*", "/private/("),
    )
    .unwrap();
    wait_until("the regex rejection to show", RELOAD, || {
        let (_, dump) = e.pc.admin_get("/config_dump");
        dump.contains("/private/(")
    });
    assert_eq!(curl(&[&e.url("/private/a")]).status, 200);
}

#[test]
fn startup_with_broken_policy_is_not_ready_and_fails_closed() {
    let e = common::echo_unready(|origin| {
        common::echo_policy(origin).replace("endpointSelector", "endpointSelectr")
    });
    wait_until("the rejection to show", RELOAD, || {
        e.pc.admin_get("/config_dump").1.contains("endpointSelectr")
    });
    assert_eq!(e.pc.admin_get("/ready").0, 503);
    // No policy at all: every connection is refused, never let through.
    let r = curl(&[&e.url("/public/a")]);
    assert!([7, 52, 56].contains(&r.exit), "{r:?}");
    // Fixing the file makes it ready without a restart.
    std::fs::write(e.pc.path("policy.yaml"), common::echo_policy(e.origin)).unwrap();
    wait_until("ready after the fix", RELOAD, || {
        e.pc.admin_get("/ready").0 == 200
    });
    assert_eq!(curl(&[&e.url("/public/a")]).status, 200);
}

/// Lines of the log that contain `needle`.
fn log_count(e: &common::Echo, needle: &str) -> usize {
    e.pc.log().lines().filter(|l| l.contains(needle)).count()
}

/// One edit, one reload. Each reload opens the policy files, and the
/// watcher took that open for an edit: after any change the policy was
/// re-read and re-published every debounce period, forever, and a broken
/// file was refused (logged, counted) six times a second.
#[test]
fn one_edit_is_one_reload_and_a_broken_edit_one_rejection() {
    let e = common::echo();
    let published = "policy published";
    let settle = Duration::from_secs(3);
    let loads = |result: &str| {
        e.pc.metric(&format!(
            "portcullis_policy_file_loads_total{{result=\"{result}\"}}"
        ))
    };
    std::thread::sleep(Duration::from_millis(500));
    let start = log_count(&e, published);
    assert_eq!(start, 1, "{}", e.pc.log());

    // Append a comment: the content changes, the policy does not.
    let path = e.pc.path("policy.yaml");
    let append = |line: &str| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(line.as_bytes()).unwrap();
    };
    append("# one edit\n");
    wait_until("the reload", RELOAD, || log_count(&e, published) > start);
    std::thread::sleep(settle);
    assert_eq!(
        log_count(&e, published),
        start + 1,
        "one edit, more than one reload:\n{}",
        e.pc.log()
    );
    assert_eq!(loads("published"), 2.0);

    // A touch (open, attributes, close after write): one reload too.
    let out = std::process::Command::new("touch")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    wait_until("the reload", RELOAD, || {
        log_count(&e, published) > start + 1
    });
    std::thread::sleep(settle);
    assert_eq!(log_count(&e, published), start + 2, "{}", e.pc.log());
    assert_eq!(loads("published"), 3.0);

    // A broken edit: refused once, counted once, logged once; and the last
    // good policy keeps enforcing.
    append("spec: [unclosed\n");
    wait_until("the rejection", RELOAD, || {
        log_count(&e, "policy rejected") > 0
    });
    std::thread::sleep(settle);
    assert_eq!(
        log_count(&e, "policy rejected"),
        1,
        "one broken edit, more than one rejection:\n{}",
        e.pc.log()
    );
    assert_eq!(loads("rejected"), 1.0);
    assert_eq!(
        e.pc.metric("portcullis_policy_updates_total{result=\"rejected\"}"),
        1.0
    );
    assert_eq!(loads("published"), 3.0);
    assert_eq!(log_count(&e, published), start + 2);
    assert_eq!(curl(&[&e.url("/public/a")]).status, 200);
    assert_eq!(curl(&[&e.url("/private/a")]).status, 403);
}
