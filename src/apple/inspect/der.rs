//! Just enough DER to read what OpenSSL's API does not expose of a PKCS#7 signature: the signer's
//! signed attributes (signingTime), its digest algorithm, and whether the content is detached.
//!
//! Fixed paths only, no recursion; every length is checked against what is left of the input.

use super::values::calendar_to_unix;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0]` constructed: SignedData's explicit content, certificates, a signer's signed attributes.
const CONTEXT_0: u8 = 0xa0;
const CONTEXT_1: u8 = 0xa1;

/// 1.2.840.113549.1.7.2
const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/// 1.2.840.113549.1.9.5
const SIGNING_TIME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];
const DIGESTS: [(&[u8], &str); 6] = [
    (&[0x2b, 0x0e, 0x03, 0x02, 0x1a], "SHA-1"),
    (&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01], "SHA-256"),
    (&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02], "SHA-384"),
    (&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03], "SHA-512"),
    (&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04], "SHA-224"),
    (&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05], "MD5"),
];

struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
}

/// Reads one tag-length-value from the front of `input` and advances past it.
fn next<'a>(input: &mut &'a [u8]) -> Option<Tlv<'a>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: 1 to 4 length bytes; indefinite lengths (0x80) are BER, not DER.
        let (bytes, rest) =
            rest.split_at_checked(usize::from(first & 0x7f)).filter(|(b, _)| (1..=4).contains(&b.len()))?;
        let len = bytes.iter().try_fold(0usize, |acc, &b| acc.checked_mul(256)?.checked_add(usize::from(b)))?;
        (len, rest)
    };
    let (content, rest) = rest.split_at_checked(len)?;
    *input = rest;
    Some(Tlv { tag, content })
}

fn expect<'a>(input: &mut &'a [u8], tag: u8) -> Option<&'a [u8]> {
    next(input).filter(|t| t.tag == tag).map(|t| t.content)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningTime {
    Absent,
    Unreadable,
    At(i64),
}

#[derive(Debug)]
pub struct SignerFacts {
    pub signer_infos: usize,
    pub detached: bool,
    pub digest: Option<&'static str>,
    pub signing_time: SigningTime,
}

/// Reads a DER ContentInfo holding SignedData. `None` when it is not one.
pub fn signer_facts(der: &[u8]) -> Option<SignerFacts> {
    let mut input = der;
    let mut content_info = expect(&mut input, SEQUENCE)?;
    if expect(&mut content_info, OID)? != SIGNED_DATA {
        return None;
    }
    let mut explicit = expect(&mut content_info, CONTEXT_0)?;
    let mut signed_data = expect(&mut explicit, SEQUENCE)?;
    expect(&mut signed_data, INTEGER)?;
    expect(&mut signed_data, SET)?;
    let mut encapsulated = expect(&mut signed_data, SEQUENCE)?;
    expect(&mut encapsulated, OID)?;
    let detached = encapsulated.is_empty();
    // Optional certificates [0] and CRLs [1], then the signer infos.
    let mut item = next(&mut signed_data)?;
    while item.tag == CONTEXT_0 || item.tag == CONTEXT_1 {
        item = next(&mut signed_data)?;
    }
    if item.tag != SET {
        return None;
    }
    let mut infos = item.content;
    let mut signer_infos = 0;
    let mut first = None;
    while !infos.is_empty() {
        let info = expect(&mut infos, SEQUENCE)?;
        signer_infos += 1;
        first.get_or_insert(info);
    }
    let (digest, signing_time) = match first {
        Some(info) => read_signer_info(info)?,
        None => (None, SigningTime::Absent),
    };
    Some(SignerFacts { signer_infos, detached, digest, signing_time })
}

fn read_signer_info(mut info: &[u8]) -> Option<(Option<&'static str>, SigningTime)> {
    expect(&mut info, INTEGER)?;
    next(&mut info)?; // issuerAndSerialNumber, or [0] subjectKeyIdentifier
    let mut algorithm = expect(&mut info, SEQUENCE)?;
    let oid = expect(&mut algorithm, OID)?;
    let digest = DIGESTS.iter().find(|(o, _)| *o == oid).map(|(_, name)| *name);
    let mut signing_time = SigningTime::Absent;
    if let Some(mut attributes) = expect(&mut info, CONTEXT_0) {
        while !attributes.is_empty() {
            let mut attribute = expect(&mut attributes, SEQUENCE)?;
            if expect(&mut attribute, OID)? != SIGNING_TIME {
                continue;
            }
            let mut values = expect(&mut attribute, SET)?;
            signing_time = next(&mut values)
                .and_then(|t| parse_time(t.tag, t.content))
                .map_or(SigningTime::Unreadable, SigningTime::At);
        }
    }
    Some((digest, signing_time))
}

/// UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSS[.f]Z`, as DER writes them.
fn parse_time(tag: u8, content: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(content).ok()?;
    let digits = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        UTC_TIME => {
            let yy: u32 = digits.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, digits.get(2..)?)
        }
        GENERALIZED_TIME => (digits.get(..4)?.parse().ok()?, digits.get(4..)?),
        _ => return None,
    };
    let whole = rest.split('.').next()?;
    if whole.len() != 10 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |i: usize| whole.get(i..i + 2).and_then(|s| s.parse::<u32>().ok());
    let fields = [year, field(0)?, field(2)?, field(4)?, field(6)?, field(8)?.min(59)];
    calendar_to_unix(fields, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time(UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(parse_time(GENERALIZED_TIME, b"19700101000001.5Z"), Some(1));
        assert_eq!(parse_time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        for bad in [&b"7001010000Z"[..], b"700101000000", b"701301000000Z", b"\xff"] {
            assert_eq!(parse_time(UTC_TIME, bad), None);
        }
    }

    #[test]
    fn lengths_never_run_past_the_input() {
        let cases: [&[u8]; 6] = [
            b"",
            b"\x30",
            b"\x30\x05\x00",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x80\x00\x00",
            b"\x30\x85\x01\x01\x01\x01\x01",
        ];
        for case in cases {
            let mut input = case;
            assert!(next(&mut input).is_none(), "{case:?}");
        }
        let mut input: &[u8] = b"\x02\x01\x05\x30\x00";
        assert_eq!(expect(&mut input, INTEGER), Some(&b"\x05"[..]));
        assert_eq!(expect(&mut input, SEQUENCE), Some(&b""[..]));
        assert!(input.is_empty());
    }
}
