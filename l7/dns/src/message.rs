//! Queries as policy sees them and the replies Portcullis makes itself.
//!
//! Forwarded queries and relayed answers keep their original bytes; only the
//! 16-bit ID is rewritten in place ([`set_id`]), so nothing the client or
//! server sent is re-encoded.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

/// A name as policy and the FQDN cache see it: lowercase, ending in a dot.
/// Names of plain hostname bytes are built straight from their labels in one
/// pass (the common case, and on the hot path of every query and answer);
/// any other byte goes through hickory's presentation form, which escapes it.
pub fn normalized_name(name: &Name) -> String {
    let mut s = String::with_capacity(name.len() + 1);
    for label in name.iter() {
        let plain = label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        match std::str::from_utf8(label) {
            Ok(l) if plain => s.push_str(l),
            _ => return escaped(name),
        }
        s.push('.');
    }
    if s.is_empty() {
        s.push('.');
    }
    s.make_ascii_lowercase();
    s
}

/// [`normalized_name`] for names with bytes that need escaping.
fn escaped(name: &Name) -> String {
    let mut s = name.to_ascii().to_ascii_lowercase();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// Whether `a` and `b` are the same name: label by label, ASCII case
/// ignored (RFC 4343), as hickory's `Name == Name` decides too; that one
/// goes through a generic per-character comparator at about ten times the
/// cost, and this runs on every answer.
pub fn same_name(a: &Name, b: &Name) -> bool {
    if a.is_fqdn() != b.is_fqdn() {
        return false;
    }
    let (mut x, mut y) = (a.iter(), b.iter());
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p.eq_ignore_ascii_case(q) => {}
            _ => return false,
        }
    }
}

/// A parsed query: the message and its one question, which is judged.
#[derive(Debug)]
pub struct Query {
    pub message: Message,
    /// Lowercased, with the trailing dot.
    pub name: String,
    pub qtype: RecordType,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0} bytes is shorter than a DNS header")]
    Short(usize),
    #[error("malformed DNS message: {0}")]
    Malformed(String),
    #[error("a response where a query was expected")]
    NotAQuery,
    #[error("opcode {0:?} is not a standard query")]
    NotStandardQuery(OpCode),
    /// Any count but one. Policy judges one name, and whatever is judged
    /// is all that may be forwarded: a second question would carry a
    /// denied name past the judge to the server.
    #[error("{0} questions where a query carries exactly one")]
    QuestionCount(u16),
}

impl Query {
    pub fn parse(bytes: &[u8]) -> Result<Query, QueryError> {
        if bytes.len() < 12 {
            return Err(QueryError::Short(bytes.len()));
        }
        let message = Message::from_vec(bytes).map_err(|e| QueryError::Malformed(e.to_string()))?;
        if message.message_type() != MessageType::Query {
            return Err(QueryError::NotAQuery);
        }
        if message.op_code() != OpCode::Query {
            return Err(QueryError::NotStandardQuery(message.op_code()));
        }
        // The header's count is what the server will read; what hickory
        // read must agree with it.
        let count = u16::from_be_bytes([bytes[4], bytes[5]]);
        let [q] = message.queries() else {
            return Err(QueryError::QuestionCount(count));
        };
        if count != 1 {
            return Err(QueryError::QuestionCount(count));
        }
        let name = normalized_name(q.name());
        let qtype = q.query_type();
        Ok(Query {
            message,
            name,
            qtype,
        })
    }

    /// A reply made here with `rcode`, echoing the ID, opcode, RD flag and
    /// the question.
    pub fn reply(&self, rcode: Rcode) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(self.message.id())
            .set_message_type(MessageType::Response)
            .set_op_code(self.message.op_code())
            .set_recursion_desired(self.message.recursion_desired())
            .set_recursion_available(true)
            .set_checking_disabled(self.message.checking_disabled())
            .set_response_code(rcode.code());
        if let Some(q) = self.message.queries().first() {
            m.add_query(q.clone());
        }
        // A header and one question that parsed a moment ago always encode.
        m.to_vec()
            .unwrap_or_else(|_| header_only(self.message.id(), rcode))
    }
}

/// The reply codes Portcullis answers with itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// Policy denied the name (Cilium's default).
    Refused,
    /// Policy denied the name, with `--tofqdns-dns-reject-response-code=nameError`.
    NxDomain,
    /// The upstream did not answer in time.
    ServFail,
    /// The query could not be parsed.
    FormErr,
}

impl Rcode {
    /// The code's mnemonic, as dig prints it.
    pub fn name(self) -> &'static str {
        // Every variant is one of the codes the table names.
        MNEMONICS[usize::from(u16::from(self.code()))]
    }

    fn code(self) -> ResponseCode {
        match self {
            Rcode::Refused => ResponseCode::Refused,
            Rcode::NxDomain => ResponseCode::NXDomain,
            Rcode::ServFail => ResponseCode::ServFail,
            Rcode::FormErr => ResponseCode::FormErr,
        }
    }
}

/// The mnemonics dig prints for response codes 0 to 10.
const MNEMONICS: [&str; 11] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",
];

/// The mnemonic of a response code as dig prints it (`NOERROR`, …);
/// `RCODE<n>` for codes without one.
pub fn rcode_name(code: ResponseCode) -> String {
    let n = u16::from(code);
    match MNEMONICS.get(usize::from(n)) {
        Some(m) => (*m).to_string(),
        None => format!("RCODE{n}"),
    }
}

/// A header-only reply (no question), e.g. FORMERR for a query whose
/// question does not parse.
pub fn header_only(id: u16, rcode: Rcode) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_response_code(rcode.code());
    // A bare header always encodes (12 bytes).
    m.to_vec().unwrap_or_default()
}

/// FORMERR for bytes that carry at least a header's ID; `None` for less,
/// or for something that is itself a response (never answer a response).
pub fn formerr(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < 12 || bytes[2] & 0x80 != 0 {
        return None;
    }
    Some(header_only(id(bytes), Rcode::FormErr))
}

/// The message ID of raw DNS bytes (at least 2 long).
pub fn id(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

/// Rewrites the message ID of raw DNS bytes in place.
pub fn set_id(bytes: &mut [u8], id: u16) {
    bytes[..2].copy_from_slice(&id.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query as Q;
    use std::str::FromStr;

    #[test]
    fn same_name_ignores_ascii_case_only() {
        let n = |s: &str| Name::from_str(s).unwrap();
        let same = |a: &str, b: &str| {
            let r = same_name(&n(a), &n(b));
            assert_eq!(r, n(a) == n(b), "{a} {b}: agrees with hickory's ==");
            r
        };
        assert!(same("API.github.COM.", "api.GitHub.com."));
        assert!(same(".", "."));
        assert!(!same("api.github.com.", "apj.github.com."));
        assert!(!same("a.github.com.", "github.com."));
        assert!(!same("github.com.", "a.github.com."));
        assert!(!same("*.a.b.", "a.b."));
        assert!(!same("a.b", "a.b."));
        let odd = Name::from_labels([&b"\xC4"[..], b"x"]).unwrap();
        let odd_lower = Name::from_labels([&b"\xE4"[..], b"x"]).unwrap();
        assert!(!same_name(&odd, &odd_lower), "only ASCII letters fold");
    }

    #[test]
    fn names_are_lowercase_with_a_trailing_dot_and_odd_bytes_escaped() {
        let n = |labels: &[&[u8]]| Name::from_labels(labels.iter().copied()).unwrap();
        assert_eq!(
            normalized_name(&n(&[b"API", b"GitHub", b"com"])),
            "api.github.com."
        );
        assert_eq!(
            normalized_name(&Name::from_str("a-b_c.d").unwrap()),
            "a-b_c.d."
        );
        assert_eq!(normalized_name(&Name::root()), ".");
        // Not plain hostname bytes: hickory's presentation form, which is
        // what the fast path must agree with wherever both apply.
        assert_eq!(normalized_name(&n(&[b"a.b", b"C"])), "a\\.b.c.");
        assert_eq!(normalized_name(&n(&[b"*", b"x"])), "*.x.");
        for name in ["WWW.example.org.", "x", "a1-b2.c_d.e"] {
            let name = Name::from_str(name).unwrap();
            let mut slow = name.to_ascii().to_ascii_lowercase();
            if !slow.ends_with('.') {
                slow.push('.');
            }
            assert_eq!(normalized_name(&name), slow);
        }
    }

    pub(crate) fn query(name: &str, qtype: RecordType, id: u16) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(id)
            .set_recursion_desired(true)
            .add_query(Q::query(Name::from_str(name).unwrap(), qtype));
        m.to_vec().unwrap()
    }

    #[test]
    fn rcode_names_are_dig_s() {
        assert_eq!(rcode_name(ResponseCode::NoError), "NOERROR");
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(ResponseCode::Unknown(3841)), "RCODE3841");
        for (r, name) in [
            (Rcode::Refused, "REFUSED"),
            (Rcode::NxDomain, "NXDOMAIN"),
            (Rcode::ServFail, "SERVFAIL"),
            (Rcode::FormErr, "FORMERR"),
        ] {
            assert_eq!(r.name(), name);
        }
    }

    #[test]
    fn parses_the_question_lowercased() {
        let q = Query::parse(&query("API.GitHub.com", RecordType::A, 77)).unwrap();
        assert_eq!(q.name, "api.github.com.");
        assert_eq!(q.qtype, RecordType::A);
        let reply = Message::from_vec(&q.reply(Rcode::Refused)).unwrap();
        assert_eq!(reply.id(), 77);
        assert_eq!(reply.response_code(), ResponseCode::Refused);
        assert_eq!(reply.message_type(), MessageType::Response);
        assert!(reply.recursion_desired());
        assert!(reply.queries()[0]
            .name()
            .to_ascii()
            .eq_ignore_ascii_case("api.github.com."));
        let nx = Message::from_vec(&q.reply(Rcode::NxDomain)).unwrap();
        assert_eq!(nx.response_code(), ResponseCode::NXDomain);
    }

    #[test]
    fn bad_queries() {
        assert!(matches!(Query::parse(&[0; 5]), Err(QueryError::Short(5))));
        let mut q = query("a.com", RecordType::A, 1);
        q.truncate(q.len() - 3);
        assert!(matches!(Query::parse(&q), Err(QueryError::Malformed(_))));
        // A compression pointer to itself in the question name.
        let mut looped = query("a.com", RecordType::A, 1)[..12].to_vec();
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(matches!(
            Query::parse(&looped),
            Err(QueryError::Malformed(_))
        ));
        let mut resp = query("a.com", RecordType::A, 1);
        resp[2] |= 0x80;
        assert!(matches!(Query::parse(&resp), Err(QueryError::NotAQuery)));
        assert!(formerr(&resp).is_none(), "never answer a response");
        let mut noq = query("a.com", RecordType::A, 9)[..12].to_vec();
        noq[5] = 0;
        assert!(matches!(
            Query::parse(&noq),
            Err(QueryError::QuestionCount(0))
        ));
        let fe = Message::from_vec(&formerr(&noq).unwrap()).unwrap();
        assert_eq!((fe.id(), fe.response_code()), (9, ResponseCode::FormErr));
    }

    /// A denied name in a second question must not ride along with an
    /// allowed first one: any count but one is refused, as a whole.
    #[test]
    fn a_query_must_carry_exactly_one_question() {
        let mut two = Message::new();
        two.set_id(0x2222)
            .set_recursion_desired(true)
            .add_query(Q::query(
                Name::from_str("allowed.example.").unwrap(),
                RecordType::A,
            ))
            .add_query(Q::query(
                Name::from_str("denied.example.").unwrap(),
                RecordType::A,
            ));
        let two = two.to_vec().unwrap();
        assert_eq!(&two[4..6], &[0, 2]);
        assert!(matches!(
            Query::parse(&two),
            Err(QueryError::QuestionCount(2))
        ));
        let fe = Message::from_vec(&formerr(&two).unwrap()).unwrap();
        assert_eq!(
            (fe.id(), fe.response_code()),
            (0x2222, ResponseCode::FormErr)
        );
        assert!(fe.queries().is_empty(), "no question is echoed");
        // The most a header can claim; the questions are not there.
        let mut many = query("a.com", RecordType::A, 3);
        many[4..6].copy_from_slice(&[0xff, 0xff]);
        assert!(matches!(Query::parse(&many), Err(QueryError::Malformed(_))));
        assert!(Query::parse(&query("a.com", RecordType::A, 4)).is_ok());
    }

    #[test]
    fn ids_rewrite_in_place() {
        let mut q = query("a.com", RecordType::AAAA, 0x1234);
        assert_eq!(id(&q), 0x1234);
        set_id(&mut q, 0xbeef);
        assert_eq!(Query::parse(&q).unwrap().message.id(), 0xbeef);
    }
}
