//! The JWT rules of GP Connect 1.x (integration_cross_organisation_audit_and_provenance.md):
//! the `Authorization` header, the token's three parts, its header and its signature. The
//! payload's claims are `claims`' job.
//!
//! Unsigned tokens (`alg` `none`, which every 1.x consumer sends) are taken apart here because
//! `jsonwebtoken` does not accept `none`; signed tokens, for endpoints configured with a key,
//! are verified with `jsonwebtoken`.

use std::cell::RefCell;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::HeaderValue;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::claims;
use super::findings::{Challenge, Findings, Rule};
use super::view::{Document, Object, Scratch};
use crate::config::elements::Elements;
use crate::config::interactions::{Interaction, JwtRules};

/// What a token is checked against.
#[derive(Clone, Copy)]
pub struct Expected<'a> {
    /// The GP Connect version's rules (1.x STU3, or 0.7 DSTU2 for Access Record HTML).
    pub rules: JwtRules,
    /// The provider endpoint's service root, which `aud` must equal; `None` skips that rule.
    pub aud: Option<&'a str>,
    /// The interaction the request declares; `None` skips the scope and reason rules.
    pub interaction: Option<&'a Interaction>,
    /// The time to judge `exp` by, in seconds since 1970.
    pub now: i64,
    /// Leeway on `exp`, in seconds, for clocks that disagree a little.
    pub clock_skew: u64,
    /// The key a signed token must verify with; `None` means tokens must be unsigned.
    pub key: Option<&'a DecodingKey>,
    /// The FHIR STU3 element tables the resource claims are read against; `None` skips that
    /// rule.
    pub elements: Option<&'a Elements>,
}

/// A token's header and payload, as far as they could be decoded.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Decoded {
    /// The header as a JSON object, when its part decoded to one.
    pub header: Option<Value>,
    /// The payload as a JSON object, when its part decoded to one.
    pub payload: Option<Value>,
}

/// The header of every GP Connect 1.x token.
pub fn unsigned_header() -> Value {
    serde_json::json!({"alg": "none", "typ": "JWT"})
}

/// An unsigned token: base64url parts and an empty signature.
pub fn encode_unsigned(header: &Value, payload: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

/// Checks the `Authorization` header and the bearer token in it; returns the token, when
/// there was one (for [`decode`], when the journal keeps it).
pub fn check_authorization<'h>(
    header: Option<&'h HeaderValue>,
    expected: &Expected,
    findings: &mut Findings,
) -> Option<&'h str> {
    let Some(value) = header else {
        findings.challenge = Some(Challenge::Bearer);
        findings.fail(
            Rule::Authorization,
            "Authorization header is missing; send Authorization: Bearer <JWT>",
        );
        return None;
    };
    let Ok(text) = value.to_str() else {
        findings.challenge = Some(Challenge::InvalidRequest);
        findings.fail(
            Rule::Authorization,
            "Authorization header is not visible ASCII; send Authorization: Bearer <JWT>",
        );
        return None;
    };
    let Some(token) = bearer_token(text) else {
        findings.challenge = Some(Challenge::Bearer);
        let scheme = text.split_whitespace().next().unwrap_or("");
        findings.fail(
            Rule::Authorization,
            format!("Authorization header must use the Bearer scheme (Authorization: Bearer <JWT>), got `{}`", shorten(scheme)),
        );
        return None;
    };
    if token.is_empty() {
        findings.challenge = Some(Challenge::InvalidRequest);
        findings.fail(
            Rule::Authorization,
            "Authorization header has no token after Bearer",
        );
        return None;
    }
    let before = findings.violations.len();
    check_token(token, expected, findings);
    if findings.violations.len() > before {
        findings.challenge = Some(Challenge::InvalidToken);
    }
    Some(token)
}

/// The token of an `Authorization` value, when its scheme is Bearer (case-insensitive, as
/// RFC 6750 says); the token may be empty.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    scheme.eq_ignore_ascii_case("Bearer").then(|| token.trim())
}

/// A part's decoded bytes and what reading them needs, kept per thread so that checking a
/// token allocates nothing for them.
#[derive(Default)]
struct Part {
    bytes: Vec<u8>,
    view: Scratch,
}

thread_local! {
    /// The header's and the payload's [`Part`].
    static PARTS: RefCell<[Part; 2]> = RefCell::default();
}

/// Checks a token against every rule. The parts are read into borrowed views, not JSON trees:
/// this runs on every request.
pub fn check_token(token: &str, expected: &Expected, findings: &mut Findings) {
    PARTS.with_borrow_mut(|[header, payload]| {
        check_parts(token, header, payload, expected, findings)
    });
}

fn check_parts(
    token: &str,
    header_part: &mut Part,
    payload_part: &mut Part,
    expected: &Expected,
    findings: &mut Findings,
) {
    let (parts, count) = split(token);
    match count {
        3 => {}
        2 => findings.fail(
            Rule::Parts,
            "JWT must be three base64url parts separated by dots, and this one has two: an unsigned JWT ends with `.` (its empty signature), so add the trailing dot",
        ),
        n => findings.fail(
            Rule::Parts,
            format!("JWT must be three base64url parts separated by dots (header.payload.signature), and this one has {n}"),
        ),
    }
    let header_bytes =
        parts[0].and_then(|p| decode_base64("header", p, &mut header_part.bytes, findings));
    let payload_bytes =
        parts[1].and_then(|p| decode_base64("payload", p, &mut payload_part.bytes, findings));
    let header =
        header_bytes.and_then(|b| parse_object("header", b, &mut header_part.view, findings));
    let payload =
        payload_bytes.and_then(|b| parse_object("payload", b, &mut payload_part.view, findings));
    if let Some(header) = header.as_ref().and_then(|d| d.root().object()) {
        let signed = match parts {
            [Some(h), Some(p), Some(signature)] if count == 3 => Some(Signed {
                message: &token[..h.len() + 1 + p.len()],
                signature,
            }),
            _ => None,
        };
        check_header(&header, signed, expected, findings);
    }
    if let Some(payload) = payload.as_ref().and_then(|d| d.root().object()) {
        claims::check(&payload, expected, findings);
    }
}

/// The token's first three dot-separated parts, and how many parts it has.
fn split(token: &str) -> ([Option<&str>; 3], usize) {
    let mut parts = [None; 3];
    let mut count = 0;
    let mut start = 0;
    let ends = memchr::memchr_iter(b'.', token.as_bytes()).chain([token.len()]);
    for end in ends {
        if let Some(part) = parts.get_mut(count) {
            *part = Some(&token[start..end]);
        }
        count += 1;
        start = end + 1;
    }
    (parts, count)
}

/// A token's header and payload as JSON trees, as far as they decode, for `ssp-sim jwt
/// --decode` to print; [`check_token`] says what is wrong with them.
pub fn decode(token: &str) -> Decoded {
    let mut parts = token.split('.');
    let mut part = || {
        let bytes = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
    };
    let header = part();
    Decoded {
        header,
        payload: part(),
    }
}

/// A token's signing input and signature, when it has both.
#[derive(Clone, Copy)]
struct Signed<'t> {
    /// `header.payload`, as sent.
    message: &'t str,
    signature: &'t str,
}

/// The part `text` decoded into `out`, or `None` after saying why it does not decode.
fn decode_base64<'o>(
    name: &str,
    text: &str,
    out: &'o mut Vec<u8>,
    findings: &mut Findings,
) -> Option<&'o [u8]> {
    // The SIMD decoder takes a token's parts in a fraction of the time; it accepts exactly
    // what `base64` does (strict, canonical), and `base64` says what is wrong when it fails.
    out.clear();
    if base64_simd::URL_SAFE_NO_PAD
        .decode_append(text, out)
        .is_ok()
    {
        return Some(out);
    }
    out.clear();
    match URL_SAFE_NO_PAD.decode_vec(text, out) {
        Ok(()) => Some(out),
        Err(e) => {
            let hint = if text.contains('=') {
                "; remove the `=` padding"
            } else if text.contains(['+', '/']) {
                "; base64url writes `-` and `_` where base64 writes `+` and `/`"
            } else {
                ""
            };
            findings.fail(
                Rule::Base64url,
                format!("JWT {name} is not base64url without padding (RFC 7515): {e}{hint}"),
            );
            None
        }
    }
}

/// The part read as JSON, when it is a JSON object; else the reason, as a finding.
fn parse_object<'w>(
    name: &str,
    bytes: &[u8],
    work: &'w mut Scratch,
    findings: &mut Findings,
) -> Option<Document<'w>> {
    match Document::parse(bytes, work) {
        Ok(document) if document.root().is_object() => Some(document),
        Ok(other) => {
            findings.fail(
                Rule::Json,
                format!(
                    "JWT {name} must be a JSON object, got {}",
                    other.root().describe()
                ),
            );
            None
        }
        Err(e) => {
            findings.fail(Rule::Json, format!("JWT {name} is not JSON: {e}"));
            None
        }
    }
}

fn check_header(
    header: &Object,
    signed: Option<Signed>,
    expected: &Expected,
    findings: &mut Findings,
) {
    let typ = header.get("typ");
    match typ.and_then(|t| t.as_str()) {
        Some(t) if t == "JWT" => {}
        _ => match typ {
            None => findings.fail(Rule::Typ, "JWT header typ is missing; it must be JWT"),
            Some(other) => findings.fail(
                Rule::Typ,
                format!("JWT header typ must be JWT, got {}", other.describe()),
            ),
        },
    }
    let alg = header.get("alg");
    match alg.and_then(|a| a.as_str()).as_deref() {
        Some("none") => match expected.key {
            Some(_) => findings.fail(
                Rule::Alg,
                "JWT header alg is none, but this endpoint verifies signed JWTs (jwt_key in routes.toml): sign the token",
            ),
            None if signed.is_some_and(|s| !s.signature.is_empty()) => findings.fail(
                Rule::Signature,
                "JWT with alg none must have an empty signature: end the token with the second dot",
            ),
            None => {}
        },
        Some(signed_alg) => verify(signed_alg, signed, expected.key, findings),
        None => match alg {
            None => findings.fail(
                Rule::Alg,
                "JWT header alg is missing; GP Connect 1.x tokens are unsigned, alg none",
            ),
            Some(other) => findings.fail(
                Rule::Alg,
                format!("JWT header alg must be none, got {}", other.describe()),
            ),
        },
    }
}

/// A signed token: acceptable only on an endpoint with a key that verifies it.
fn verify(alg: &str, signed: Option<Signed>, key: Option<&DecodingKey>, findings: &mut Findings) {
    let Some(key) = key else {
        findings.fail(
            Rule::Alg,
            format!("JWT header alg must be none: GP Connect 1.x tokens are unsigned, and this one is signed ({}) while the endpoint has no jwt_key in routes.toml to verify it", shorten(alg)),
        );
        return;
    };
    let algorithm = match alg.parse::<Algorithm>() {
        Ok(a) if a.family() == key.family() => a,
        _ => {
            findings.fail(
                Rule::Alg,
                format!(
                    "JWT header alg `{}` cannot be verified with the endpoint's jwt_key, a {:?} key",
                    shorten(alg),
                    key.family()
                ),
            );
            return;
        }
    };
    // Without three parts there is no signature to verify; `jwt.parts` already says so.
    let Some(signed) = signed else { return };
    match jsonwebtoken::crypto::verify(signed.signature, signed.message.as_bytes(), key, algorithm)
    {
        Ok(true) => {}
        Ok(false) => findings.fail(
            Rule::Signature,
            format!("JWT signature ({alg}) does not verify with the endpoint's jwt_key"),
        ),
        Err(e) => findings.fail(
            Rule::Signature,
            format!("JWT signature ({alg}) cannot be read: {e}"),
        ),
    }
}

/// Cuts consumer-supplied text that goes into messages to a readable length.
pub(super) fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        /// `decode_base64` takes the SIMD decoder's answer; it must be the `base64` crate's.
        #[test]
        fn the_simd_decoder_accepts_and_decodes_exactly_as_base64_does(
            text in prop_oneof!["[A-Za-z0-9_-]{0,40}", "[A-Za-z0-9_=+/.-]{0,24}"],
        ) {
            let simd = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(&text).ok();
            prop_assert_eq!(simd, URL_SAFE_NO_PAD.decode(&text).ok());
        }
    }

    pub const ROOT: &str = "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect";
    pub const NOW: i64 = 1_700_000_100;

    /// A payload that passes every rule for an organization/*.read interaction at `NOW`.
    pub fn good_payload() -> Value {
        json!({
            "iss": "https://consumer.example.nhs.uk/",
            "sub": "10019",
            "aud": ROOT,
            "exp": 1_700_000_300,
            "iat": 1_700_000_000,
            "reason_for_request": "directcare",
            "requested_scope": "organization/*.read",
            "requesting_device": {
                "resourceType": "Device",
                "identifier": [{"system": "https://consumer.example.nhs.uk/Id/device", "value": "CONS-APP-4"}],
                "model": "Consumer product name",
                "version": "5.3.0"
            },
            "requesting_organization": {
                "resourceType": "Organization",
                "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A11111"}],
                "name": "Test Hospital"
            },
            "requesting_practitioner": {
                "resourceType": "Practitioner",
                "id": "10019",
                "identifier": [
                    {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "UNK"},
                    {"system": "https://fhir.nhs.uk/Id/sds-role-profile-id", "value": "UNK"},
                    {"system": "https://consumer.example.nhs.uk/Id/user-guid", "value": "98ed4f78"}
                ],
                "name": [{"family": "Jones", "given": ["Claire"], "prefix": ["Dr"]}]
            }
        })
    }

    pub fn expected(key: Option<&DecodingKey>) -> Expected<'_> {
        Expected {
            rules: JwtRules::Gpconnect1,
            aud: Some(ROOT),
            interaction: None,
            now: NOW,
            clock_skew: 30,
            key,
            elements: Some(shipped_elements()),
        }
    }

    /// The shipped STU3 tables.
    pub fn shipped_elements() -> &'static Elements {
        Elements::embedded().unwrap()
    }

    pub fn rules(findings: &Findings) -> Vec<Rule> {
        findings.violations.iter().map(|f| f.rule).collect()
    }

    fn check(token: &str) -> Findings {
        let mut f = Findings::default();
        check_token(token, &expected(None), &mut f);
        f
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_others_are_not_bearer() {
        assert_eq!(bearer_token("BEARER a.b."), Some("a.b."));
        assert_eq!(bearer_token("  bearer   a.b. "), Some("a.b."));
        assert_eq!(bearer_token("Bearer"), Some(""));
        assert_eq!(bearer_token("Basic a.b."), None);
    }

    #[test]
    fn a_well_formed_unsigned_token_passes() {
        let f = check(&encode_unsigned(&unsigned_header(), &good_payload()));
        assert_eq!(f, Findings::default());
    }

    #[test]
    fn the_authorization_header_needs_the_bearer_scheme_and_a_token() {
        let run = |value: Option<&str>| {
            let mut f = Findings::default();
            let header = value.map(|v| HeaderValue::from_str(v).unwrap());
            check_authorization(header.as_ref(), &expected(None), &mut f);
            f.violations
        };
        assert!(run(None)[0]
            .message
            .contains("Authorization header is missing"));
        assert!(run(Some("Basic abc"))[0].message.contains("Bearer scheme"));
        assert!(run(Some("Bearer "))[0].message.contains("no token"));
        let good = format!(
            "bearer {}",
            encode_unsigned(&unsigned_header(), &good_payload())
        );
        assert!(run(Some(&good)).is_empty());
    }

    #[test]
    fn a_missing_trailing_dot_is_named() {
        let token = encode_unsigned(&unsigned_header(), &good_payload());
        let f = check(token.trim_end_matches('.'));
        assert_eq!(rules(&f), [Rule::Parts]);
        assert!(f.violations[0].message.contains("add the trailing dot"));
        assert_eq!(rules(&check("a@")), [Rule::Parts, Rule::Base64url]);
        assert_eq!(rules(&check("a.b.c.d"))[0], Rule::Parts);
    }

    #[test]
    fn parts_must_be_base64url_json_objects() {
        let f = check("eyJhbGciOiJub25lIn0=.e30.");
        assert_eq!(rules(&f)[0], Rule::Base64url);
        assert!(f.violations[0].message.contains("remove the `=` padding"));
        let array = URL_SAFE_NO_PAD.encode("[1]");
        let f = check(&format!("{array}.{array}."));
        assert_eq!(rules(&f), [Rule::Json, Rule::Json]);
        let f = check(&format!("{}.e30.", URL_SAFE_NO_PAD.encode("{nope")));
        assert!(f.violations[0]
            .message
            .starts_with("JWT header is not JSON"));
    }

    #[test]
    fn header_needs_alg_none_typ_jwt_and_an_empty_signature() {
        let payload = good_payload();
        let f = check(&encode_unsigned(&json!({"alg": "none"}), &payload));
        assert_eq!(rules(&f), [Rule::Typ]);
        let f = check(&encode_unsigned(
            &json!({"alg": "none", "typ": "jwt"}),
            &payload,
        ));
        assert_eq!(rules(&f), [Rule::Typ]);
        let f = check(&encode_unsigned(&json!({"typ": "JWT"}), &payload));
        assert_eq!(rules(&f), [Rule::Alg]);
        let f = check(&format!(
            "{}abc",
            encode_unsigned(&unsigned_header(), &payload)
        ));
        assert_eq!(rules(&f), [Rule::Signature]);
    }

    #[test]
    fn a_signed_token_without_a_configured_key_is_refused_with_the_reason() {
        let f = check(&encode_unsigned(
            &json!({"alg": "RS256", "typ": "JWT"}),
            &good_payload(),
        ));
        assert_eq!(rules(&f), [Rule::Alg]);
        assert!(f.violations[0].message.contains("no jwt_key"), "{f:?}");
    }

    fn ec_keys() -> (jsonwebtoken::EncodingKey, DecodingKey) {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        (
            jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
            DecodingKey::from_ec_pem(pair.public_key_pem().as_bytes()).unwrap(),
        )
    }

    fn signed(key: &jsonwebtoken::EncodingKey, payload: &Value) -> String {
        let header = jsonwebtoken::Header::new(Algorithm::ES256);
        jsonwebtoken::encode(&header, payload, key).unwrap()
    }

    #[test]
    fn a_signed_token_verifies_with_the_endpoint_key() {
        let (signing, verifying) = ec_keys();
        let token = signed(&signing, &good_payload());
        let mut f = Findings::default();
        check_token(&token, &expected(Some(&verifying)), &mut f);
        assert_eq!(f, Findings::default());

        let (other, _) = ec_keys();
        let mut f = Findings::default();
        check_token(
            &signed(&other, &good_payload()),
            &expected(Some(&verifying)),
            &mut f,
        );
        assert_eq!(rules(&f), [Rule::Signature]);

        let mut f = Findings::default();
        let unsigned = encode_unsigned(&unsigned_header(), &good_payload());
        check_token(&unsigned, &expected(Some(&verifying)), &mut f);
        assert_eq!(rules(&f), [Rule::Alg]);
        assert!(f.violations[0].message.contains("sign the token"));
    }

    #[test]
    fn consumer_text_in_messages_is_shortened() {
        assert_eq!(shorten("abc"), "abc");
        let long = "é".repeat(100);
        assert_eq!(shorten(&long).chars().count(), 63);
    }
}
