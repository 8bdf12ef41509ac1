//! The benchmark's knobs, from the environment (see bench/README.md).

use std::time::Duration;

pub struct Knobs {
    pub phases: Vec<String>,
    // 1. update latency
    pub updates: usize,
    pub rules: usize,
    pub verify_every: usize,
    pub keepalive: usize,
    // 2. full resync
    pub endpoints: usize,
    pub endpoint_rules: usize,
    // 3. throughput under updates
    pub duration: u64,
    pub load_rounds: usize,
    pub warmup: u64,
    pub connections: usize,
    pub update_rate: f64,
    // all
    pub method: String,
    pub ack_timeout: Duration,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        _ => default,
    }
}

impl Knobs {
    pub fn from_env() -> Knobs {
        let k = Knobs {
            phases: env_or("PHASES", "update resync load".to_string())
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            updates: env_or("UPDATES", 1000),
            rules: env_or("RULES", 100),
            verify_every: env_or("VERIFY_EVERY", 100),
            keepalive: env_or("KEEPALIVE_CONNS", 8),
            endpoints: env_or("ENDPOINTS", 1000),
            endpoint_rules: env_or("ENDPOINT_RULES", 100),
            duration: env_or("DURATION", 10),
            load_rounds: env_or("LOAD_ROUNDS", 3),
            warmup: env_or("WARMUP", 2),
            connections: env_or("CONNECTIONS", 64),
            update_rate: env_or("UPDATE_RATE", 10.0),
            method: std::env::var("METHOD").unwrap_or_else(|_| "GET".into()),
            ack_timeout: Duration::from_secs(env_or("ACK_TIMEOUT", 120)),
        };
        for p in &k.phases {
            assert!(
                ["update", "resync", "load"].contains(&p.as_str()),
                "PHASES takes update, resync and/or load, not {p:?}"
            );
        }
        assert!(k.rules >= 1 && k.endpoint_rules >= 1 && k.endpoints >= 1);
        assert!(
            k.endpoints <= 250 * 250,
            "ENDPOINTS: at most 62500 (10.1.x.y)"
        );
        assert!(k.verify_every >= 1 && k.duration >= 1 && k.update_rate > 0.0);
        assert!(k.load_rounds >= 1, "LOAD_ROUNDS: at least 1");
        assert!(
            k.method.chars().all(|c| c.is_ascii_uppercase()),
            "METHOD: an HTTP method such as GET, or empty for path-only rules"
        );
        k
    }
}
