//! What an allowed answer teaches the FQDN cache (`ExtractMsgDetails` in
//! the agent): the A and AAAA records along the CNAME chain that starts at
//! the question's name, with the chain's smallest TTL. Only NOERROR answers
//! with at least one address count; an answer record whose name is off the
//! chain rejects the whole message, so that an answer cannot teach
//! addresses for a name nobody asked about.

use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData};

use crate::message::{normalized_name, same_name};

/// The longest CNAME chain followed; longer is treated as a loop.
const MAX_CHAIN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Harvest {
    /// The question's name, lowercased with a trailing dot.
    pub name: String,
    /// The CNAME targets in chain order.
    pub cnames: Vec<String>,
    /// Sorted, without duplicates.
    pub ips: Vec<IpAddr>,
    /// The smallest TTL of the chain's records, in seconds.
    pub ttl: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HarvestError {
    #[error("response code {0}")]
    NotNoError(ResponseCode),
    #[error("no question")]
    NoQuestion,
    #[error("no A or AAAA record on the CNAME chain")]
    NoAddresses,
    #[error("answer record for {0}, which is not on the CNAME chain")]
    OffChain(String),
    #[error("CNAME chain longer than {MAX_CHAIN} or looping")]
    ChainTooLong,
}

pub fn harvest(answer: &Message) -> Result<Harvest, HarvestError> {
    if answer.response_code() != ResponseCode::NoError {
        return Err(HarvestError::NotNoError(answer.response_code()));
    }
    let q = answer.queries().first().ok_or(HarvestError::NoQuestion)?;
    // Walk the chain from the question through CNAME records. Names are
    // compared case-insensitively as they are, and turned into strings only
    // for the result.
    let mut chain: Vec<&Name> = vec![q.name()];
    loop {
        let last = *chain.last().expect("starts non-empty");
        let next = answer.answers().iter().find_map(|r| match r.data() {
            RData::CNAME(c) if same_name(r.name(), last) => Some(&c.0),
            _ => None,
        });
        match next {
            Some(t) if on_chain(&chain, t) || chain.len() > MAX_CHAIN => {
                return Err(HarvestError::ChainTooLong)
            }
            Some(t) => chain.push(t),
            None => break,
        }
    }
    let mut ips = Vec::new();
    let mut ttl = u32::MAX;
    for r in answer.answers() {
        if !on_chain(&chain, r.name()) {
            return Err(HarvestError::OffChain(normalized_name(r.name())));
        }
        match r.data() {
            RData::A(a) => ips.push(IpAddr::V4(a.0)),
            RData::AAAA(a) => ips.push(IpAddr::V6(a.0)),
            RData::CNAME(_) => {}
            // Other types on the chain (RRSIG, ...) teach nothing.
            _ => continue,
        }
        ttl = ttl.min(r.ttl());
    }
    if ips.is_empty() {
        return Err(HarvestError::NoAddresses);
    }
    ips.sort_unstable();
    ips.dedup();
    Ok(Harvest {
        name: normalized_name(chain[0]),
        cnames: chain[1..].iter().map(|n| normalized_name(n)).collect(),
        ips,
        ttl,
    })
}

fn on_chain(chain: &[&Name], name: &Name) -> bool {
    chain.iter().any(|n| same_name(n, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, Query};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::{Name, Record, RecordType};
    use std::str::FromStr;

    fn n(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn answer(q: &str, records: Vec<Record>) -> Message {
        let mut m = Message::new();
        m.set_message_type(MessageType::Response)
            .add_query(Query::query(n(q), RecordType::A));
        for r in records {
            m.add_answer(r);
        }
        // Through the wire and back, as an upstream's answer arrives.
        Message::from_vec(&m.to_vec().unwrap()).unwrap()
    }

    fn a(name: &str, ttl: u32, ip: [u8; 4]) -> Record {
        Record::from_rdata(
            n(name),
            ttl,
            RData::A(A::from(std::net::Ipv4Addr::from(ip))),
        )
    }

    fn cname(name: &str, ttl: u32, target: &str) -> Record {
        Record::from_rdata(n(name), ttl, RData::CNAME(CNAME(n(target))))
    }

    #[test]
    fn addresses_along_the_chain_with_its_smallest_ttl() {
        let m = answer(
            "API.github.com.",
            vec![
                cname("api.github.com.", 300, "lb.github.com."),
                cname("LB.github.com.", 60, "edge.example.net."),
                a("edge.example.net.", 120, [10, 0, 0, 2]),
                a("edge.example.net.", 90, [10, 0, 0, 1]),
                Record::from_rdata(
                    n("edge.example.net."),
                    500,
                    RData::AAAA(AAAA::from(std::net::Ipv6Addr::LOCALHOST)),
                ),
            ],
        );
        let h = harvest(&m).unwrap();
        assert_eq!(h.name, "api.github.com.");
        assert_eq!(h.cnames, vec!["lb.github.com.", "edge.example.net."]);
        assert_eq!(h.ips.len(), 3);
        assert_eq!(h.ttl, 60);
    }

    #[test]
    fn what_teaches_nothing() {
        let off = answer(
            "a.com.",
            vec![
                a("a.com.", 60, [1, 1, 1, 1]),
                a("evil.com.", 60, [2, 2, 2, 2]),
            ],
        );
        assert_eq!(
            harvest(&off),
            Err(HarvestError::OffChain("evil.com.".into()))
        );
        let none = answer("a.com.", vec![cname("a.com.", 60, "b.com.")]);
        assert_eq!(harvest(&none), Err(HarvestError::NoAddresses));
        let looped = answer(
            "a.com.",
            vec![cname("a.com.", 60, "b.com."), cname("b.com.", 60, "a.com.")],
        );
        assert_eq!(harvest(&looped), Err(HarvestError::ChainTooLong));
        let mut nx = answer("a.com.", vec![]);
        nx.set_response_code(ResponseCode::NXDomain);
        assert_eq!(
            harvest(&nx),
            Err(HarvestError::NotNoError(ResponseCode::NXDomain))
        );
    }
}
