//! Waiting, with a deadline, for something to become true: the one polling
//! loop of the harness, the tests and the xDS benchmark.

use std::fmt::Display;
use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How often a condition is polled.
const EVERY: Duration = Duration::from_millis(20);

/// Calls `check` every 20 ms until it gives `Some`, for at most `timeout`
/// (and at least once); `None` when time ran out.
pub fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(EVERY);
    }
}

/// Polls `done` until it holds; panics naming `what` when `timeout` runs
/// out first.
pub fn wait_until(what: impl Display, timeout: Duration, mut done: impl FnMut() -> bool) {
    if poll(timeout, || done().then_some(())).is_none() {
        panic!("timed out after {timeout:?} waiting for {what}");
    }
}

/// `fut`'s output, run on `rt` for at most `timeout`; panics naming `what`
/// when time runs out first.
pub fn wait_for<T>(
    rt: &tokio::runtime::Runtime,
    what: impl Display,
    timeout: Duration,
    fut: impl Future<Output = T>,
) -> T {
    // The timer must be made inside the runtime, hence the async block.
    rt.block_on(async { tokio::time::timeout(timeout, fut).await })
        .unwrap_or_else(|_| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) {
    wait_until(format_args!("a listener on {addr}"), timeout, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_gives_the_first_some_and_none_when_time_runs_out() {
        let mut calls = 0;
        let got = poll(Duration::from_secs(5), || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(got, Some(3));
        let started = Instant::now();
        assert_eq!(poll(Duration::from_millis(50), || None::<()>), None);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    #[should_panic(expected = "waiting for the impossible")]
    fn wait_until_names_what_it_waited_for() {
        wait_until("the impossible", Duration::from_millis(30), || false);
    }
}
