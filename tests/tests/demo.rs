//! The README's first command: `scripts/demo.sh` runs Cilium's Star Wars
//! demo against the built binary and prints what it saw.

use std::process::Command;

use portcullis_tests::*;

#[test]
fn the_readme_demo_runs_and_shows_all_three_events() {
    require_root("the demo's deathstar listens on 127.0.0.10:80");
    require("python3");
    require("curl");
    let out = Command::new("bash")
        .arg(workspace_root().join("scripts/demo.sh"))
        .args(["--once", "--no-build"])
        .env("PORTCULLIS_BIN", portcullis_bin())
        .output()
        .expect("run scripts/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("all three results match Cilium's demo"),
        "{stdout}"
    );
    // The access log printed after the ships: both requests and the
    // xwing's refused connection, which the log writer flushes last.
    let log: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
    let has = |needle: &str| log.iter().any(|l| l.contains(needle));
    assert!(has("\"/v1/request-landing\""), "{stdout}");
    assert!(has("\"/v1/exhaust-port\""), "{stdout}");
    assert!(
        has("\"kind\":\"connection\"") && has("\"verdict\":\"denied\""),
        "the refused connection is missing from the printed log:\n{stdout}"
    );
}
