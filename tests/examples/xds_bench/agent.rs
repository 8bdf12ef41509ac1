//! What the phases share: the agent's versions awaited, Portcullis started
//! on it, the policies pushed (built and edited), and readings of the proxy.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context};
use npds::proto::NetworkPolicy;
use portcullis_tests::*;
use portcullis_xds::Path;

use crate::cleanup::Tracked;

/// A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), in bytes.
pub fn proc_status_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow!("no {field} in /proc/{pid}/status"))?;
    Ok(kb * 1024)
}

/// Waits for the ACK (Ok) or NACK (Err, with its message) of `version`.
pub fn await_version(
    agent: &Agent,
    path: Path,
    version: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let cache = agent.cache.clone();
    let state = agent
        .rt
        .block_on(async move {
            tokio::time::timeout(
                timeout,
                cache.wait_for(path, |s| {
                    s.last_ack.as_ref().is_some_and(|a| a.version == version)
                        || s.last_nack.as_ref().is_some_and(|n| n.nonce == version)
                }),
            )
            .await
        })
        .map_err(|_| {
            anyhow!(
                "{}: no ACK or NACK of version {version} within {timeout:?}",
                path.type_url()
            )
        })?;
    if state
        .last_ack
        .as_ref()
        .is_some_and(|a| a.version == version)
    {
        return Ok(());
    }
    let nack = state.last_nack.expect("checked by the predicate");
    bail!(
        "{} version {version} NACKed (proxy still on {}): {}",
        path.type_url(),
        nack.version,
        nack.message
    )
}

/// Waits until Portcullis has its NPDS and NPHDS streams open on `agent`.
pub fn await_streams(agent: &Agent, pc: &mut Portcullis) -> anyhow::Result<()> {
    let open = poll(Duration::from_secs(10), || {
        let np = agent.cache.acks(Path::NetworkPolicies).streams_open;
        let hosts = agent.cache.acks(Path::NetworkPolicyHosts).streams_open;
        if np >= 1 && hosts >= 1 {
            Some(true)
        } else {
            (!pc.is_running()).then_some(false)
        }
    });
    match open {
        Some(true) => Ok(()),
        Some(false) => bail!("portcullis exited; log:\n{}", pc.log()),
        None => bail!(
            "portcullis did not open its xDS streams; log:\n{}",
            pc.log()
        ),
    }
}

/// Portcullis with one ingress listener on `port` forwarding to `upstream`,
/// policy from `agent`.
pub fn start_portcullis(
    agent: &Agent,
    port: u16,
    upstream: SocketAddr,
) -> (Portcullis, Tracked, Tracked) {
    let config = Config::new().listener(Listener::ingress(port).upstream(upstream));
    let pc = Portcullis::start_with_args(&config, &["--xds", &agent.target()]);
    let t_pid = Tracked::pid(pc.pid());
    let t_dir = Tracked::dir(pc.dir.path());
    (pc, t_pid, t_dir)
}

/// An HTTP rule for `path`, and for `method` unless it is empty.
pub fn rule(method: &str, path: &str) -> String {
    if method.is_empty() {
        format!("{{path: \"{path}\"}}")
    } else {
        http_rule(method, path)
    }
}

/// A CNP for endpoints labelled `app: {app}` allowing anyone the given HTTP
/// `rules` on TCP `port`.
pub fn cnp(name: &str, app: &str, port: u16, rules: &[String]) -> String {
    Cnp::new(name, app)
        .allow_http(ANYONE, port, rules)
        .to_string()
}

/// Replaces the one `:path` regex equal to `old` with `new`.
pub fn replace_path_regex(np: &mut NetworkPolicy, old: &str, new: &str) -> anyhow::Result<()> {
    let id = np.endpoint_id;
    let mut hits = path_regexes(np)
        .into_iter()
        .filter(|r| r.as_str() == old)
        .collect::<Vec<_>>();
    ensure!(
        hits.len() == 1,
        "endpoint {id}: {} :path matchers are {old:?}, expected 1",
        hits.len()
    );
    *hits[0] = new.to_string();
    Ok(())
}

pub fn http_rule_count(np: &NetworkPolicy) -> usize {
    np.ingress_per_port_policies
        .iter()
        .chain(&np.egress_per_port_policies)
        .flat_map(|p| &p.rules)
        .map(|r| match &r.l7 {
            Some(npds::proto::port_network_policy_rule::L7::HttpRules(h)) => h.http_rules.len(),
            _ => 0,
        })
        .sum()
}

/// GET through Portcullis on a new connection (curl); the status code.
pub fn status_of(port: u16, path: &str) -> u16 {
    curl(&["-o", "/dev/null", &format!("http://127.0.0.1:{port}{path}")]).status
}
