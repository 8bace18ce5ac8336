//! `ssp-sim jwt`: prints a GP Connect 1.x token that passes every rule of check 10 for an
//! interaction and endpoint, or, with `--decode`, takes a consumer's token apart and judges it
//! offline with the same rules and messages the simulator uses.

use std::io::{self, Read, Write};

use serde_json::{json, Value};

use crate::cli::JwtArgs;
use crate::config::elements::Elements;
use crate::config::interactions::{Interaction, Interactions, JwtRules};
use crate::config::jwt::{self as jwt_key, KeyError, Policy};
use crate::config::load;
use crate::config::problems::ConfigError;
use crate::provider::findings::Findings;
use crate::provider::jwt::{self, Expected};
use crate::provider::unix_now;
use crate::wire::systems::{ODS_CODE, SDS_ROLE_PROFILE_ID, SDS_USER_ID};

/// The namespace every interaction ID starts with; `--interaction` may leave it out.
const ID_PREFIX: &str = "urn:nhs:names:services:gpconnect:";

/// Why the command cannot do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum JwtCommandError {
    /// The interaction catalogue cannot be loaded.
    #[error("{0}")]
    Catalogue(#[from] ConfigError),
    /// `--interaction` matches no interaction ID.
    #[error("`{0}` is not an interaction of the catalogue; give its ID, e.g. urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1, or the end of it, e.g. read:patient-1")]
    UnknownInteraction(String),
    /// `--interaction` matches the end of several interaction IDs.
    #[error("`{wanted}` could be any of {candidates}; give more of the ID")]
    AmbiguousInteraction {
        /// The `--interaction` value.
        wanted: String,
        /// The IDs it could be, comma-separated.
        candidates: String,
    },
    /// Neither `--interaction` nor `--scope` gives the token a `requested_scope`.
    #[error("a token needs a requested_scope: pass --interaction (its scope is used) or --scope")]
    NoScope,
    /// `--aud` is missing: only the endpoint's service root can be the `aud`.
    #[error("a token needs an aud: pass --aud with the provider endpoint's service root (its service_root in routes.toml)")]
    NoAud,
    /// `--decode -` could not read standard input.
    #[error("cannot read the token from standard input: {0}")]
    Stdin(io::Error),
    /// `--key` names no usable public key.
    #[error("{0}")]
    Key(#[from] KeyError),
    /// The token or the report could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

/// Runs the command; `Ok(true)` means the token made or decoded passes every rule.
pub fn run(args: &JwtArgs, out: &mut impl Write) -> Result<bool, JwtCommandError> {
    let catalogue = load::load_interactions(args.interactions.as_deref())?;
    let interaction = args
        .interaction
        .as_deref()
        .map(|wanted| find(&catalogue, wanted))
        .transpose()?;
    match &args.decode {
        Some(token) => decode(args, token, interaction, out),
        None => make(args, interaction, out),
    }
}

/// The interaction an `--interaction` value names: the whole ID, the ID without its
/// namespace, or the unique ID ending in `:<value>`.
fn find<'c>(catalogue: &'c Interactions, wanted: &str) -> Result<&'c Interaction, JwtCommandError> {
    if let Some(exact) = catalogue
        .iter()
        .find(|i| i.id == wanted || i.id.strip_prefix(ID_PREFIX) == Some(wanted))
    {
        return Ok(exact);
    }
    let ending = format!(":{wanted}");
    let found: Vec<&Interaction> = catalogue
        .iter()
        .filter(|i| i.id.ends_with(&ending))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(JwtCommandError::UnknownInteraction(wanted.to_owned())),
        many => Err(JwtCommandError::AmbiguousInteraction {
            wanted: wanted.to_owned(),
            candidates: many
                .iter()
                .map(|i| i.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

fn make(
    args: &JwtArgs,
    interaction: Option<&Interaction>,
    out: &mut impl Write,
) -> Result<bool, JwtCommandError> {
    let scope = args
        .scope
        .clone()
        .or_else(|| interaction.map(|i| i.scope.clone()))
        .ok_or(JwtCommandError::NoScope)?;
    let aud = args.aud.as_deref().ok_or(JwtCommandError::NoAud)?;
    let iat = args.at.unwrap_or_else(unix_now);
    let payload = payload(args, aud, &scope, iat);
    let token = jwt::encode_unsigned(&jwt::unsigned_header(), &payload);
    writeln!(out, "{token}")?;
    // Judged by the same rules, so a deliberately broken token (e.g. --lifetime 600) says why.
    let findings = judge(args, &token, interaction, iat)?.1;
    if !findings.passed() {
        eprintln!("note: this token breaks GP Connect rules:");
        for line in findings.lines() {
            eprintln!("  {line}");
        }
    }
    Ok(findings.passed())
}

/// A payload shaped as the audit page's full example, with the given values. The device,
/// organisation name and user are example values: the rules only need them present.
fn payload(args: &JwtArgs, aud: &str, scope: &str, iat: i64) -> Value {
    json!({
        "iss": args.iss,
        "sub": args.sub,
        "aud": aud,
        "exp": iat.saturating_add(args.lifetime),
        "iat": iat,
        "reason_for_request": args.reason,
        "requested_scope": scope,
        "requesting_device": {
            "resourceType": "Device",
            "identifier": [{"system": "https://consumer.example.nhs.uk/Id/device-identifier", "value": "ssp-sim"}],
            "model": "ssp-sim",
            "version": env!("CARGO_PKG_VERSION")
        },
        "requesting_organization": {
            "resourceType": "Organization",
            "identifier": [{"system": ODS_CODE, "value": args.ods}],
            "name": "Example consumer organisation"
        },
        "requesting_practitioner": {
            "resourceType": "Practitioner",
            "id": args.sub,
            "identifier": [
                {"system": SDS_USER_ID, "value": "UNK"},
                {"system": SDS_ROLE_PROFILE_ID, "value": "UNK"},
                {"system": "https://consumer.example.nhs.uk/Id/user-id", "value": args.sub}
            ],
            "name": [{"family": "Jones", "given": ["Claire"], "prefix": ["Dr"]}]
        }
    })
}

fn decode(
    args: &JwtArgs,
    token: &str,
    interaction: Option<&Interaction>,
    out: &mut impl Write,
) -> Result<bool, JwtCommandError> {
    let token = if token == "-" {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .map_err(JwtCommandError::Stdin)?;
        text
    } else {
        token.to_owned()
    };
    // People paste the whole header as often as the token.
    let token = token.trim();
    let token = token.strip_prefix("Authorization:").unwrap_or(token).trim();
    let token = jwt::bearer_token(token).unwrap_or(token);
    let now = args.at.unwrap_or_else(unix_now);
    let (decoded, findings) = judge(args, token, interaction, now)?;
    for (name, part) in [("header", &decoded.header), ("payload", &decoded.payload)] {
        if let Some(part) = part {
            writeln!(out, "{name}:\n{}", pretty(part))?;
        }
    }
    match findings.answer() {
        None => writeln!(out, "verdict: passes (judged at {now})")?,
        Some(answer) => {
            writeln!(
                out,
                "verdict: refused with {} (judged at {now}); {} rule(s) broken:",
                answer.label(),
                findings.violations.len()
            )?;
            for f in &findings.violations {
                writeln!(out, "  {}: {}", f.rule.id(), f.message)?;
            }
        }
    }
    if !findings.notices.is_empty() {
        writeln!(out, "notices (listed in report mode, never refused):")?;
        for f in &findings.notices {
            writeln!(out, "  {}: {}", f.rule.id(), f.message)?;
        }
    }
    let mut unchecked = Vec::new();
    if args.aud.is_none() {
        unchecked.push("claim.aud (pass --aud)");
    }
    if interaction.is_none() {
        unchecked.push(
            "claim.requested_scope and the interaction's reason_for_request (pass --interaction)",
        );
    }
    if !unchecked.is_empty() {
        writeln!(out, "not checked: {}", unchecked.join("; "))?;
    }
    Ok(findings.passed())
}

fn judge(
    args: &JwtArgs,
    token: &str,
    interaction: Option<&Interaction>,
    now: i64,
) -> Result<(jwt::Decoded, Findings), JwtCommandError> {
    let key = args.key.as_deref().map(jwt_key::load).transpose()?;
    let elements = Elements::embedded()?;
    let expected = Expected {
        rules: interaction.map_or(JwtRules::default(), |i| i.jwt),
        aud: args.aud.as_deref(),
        interaction,
        now,
        clock_skew: args
            .jwt_clock_skew_s
            .unwrap_or(Policy::default().clock_skew_s),
        key: key.as_ref(),
        elements: Some(elements),
    };
    let mut findings = Findings::default();
    jwt::check_token(token, &expected, &mut findings);
    Ok((jwt::decode(token), findings))
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn args(flags: &[&str]) -> JwtArgs {
        let cli = Cli::try_parse_from([&["ssp-sim", "jwt"], flags].concat()).unwrap();
        match cli.command {
            Some(crate::cli::Command::Jwt(args)) => args,
            other => panic!("not jwt: {other:?}"),
        }
    }

    fn output(flags: &[&str]) -> (Result<bool, JwtCommandError>, String) {
        let mut out = Vec::new();
        let result = run(&args(flags), &mut out);
        (result, String::from_utf8(out).unwrap())
    }

    const AUD: &str = "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect";

    #[test]
    fn interactions_are_found_by_id_or_a_unique_ending() {
        let c = crate::config::load::load_interactions(None).unwrap();
        let read = find(&c, "read:patient-1").unwrap();
        assert_eq!(find(&c, &read.id).unwrap().id, read.id);
        assert_eq!(
            find(&c, "fhir:rest:read:metadata-1").unwrap().id,
            format!("{ID_PREFIX}fhir:rest:read:metadata-1")
        );
        assert!(matches!(
            find(&c, "read:metadata-1"),
            Err(JwtCommandError::AmbiguousInteraction { .. })
        ));
        assert!(matches!(
            find(&c, "nothing"),
            Err(JwtCommandError::UnknownInteraction(_))
        ));
    }

    #[test]
    fn a_made_token_passes_its_own_decode() {
        let (result, token) = output(&[
            "--interaction",
            "read:patient-1",
            "--aud",
            AUD,
            "--ods",
            "B82617",
        ]);
        assert!(result.unwrap());
        let token = token.trim();
        let (result, text) = output(&[
            "--decode",
            token,
            "--interaction",
            "read:patient-1",
            "--aud",
            AUD,
        ]);
        assert!(result.unwrap(), "{text}");
        assert!(text.contains("\"value\": \"B82617\""), "{text}");
        assert!(text.contains("verdict: passes"), "{text}");
        assert!(!text.contains("notices"), "{text}");
    }

    #[test]
    fn a_wrong_lifetime_makes_a_token_that_fails_and_says_why() {
        let made = ["--interaction", "read:patient-1", "--aud", AUD];
        let (result, token) = output(&[&made[..], &["--lifetime", "600"]].concat());
        assert!(!result.unwrap());
        let token = token.trim();
        let (verdict, text) = output(&[&made[..], &["--decode", token]].concat());
        assert!(!verdict.unwrap());
        assert!(
            text.contains("1 rule(s) broken:\n  claim.exp: JWT claim exp must be iat + 300"),
            "{text}"
        );
    }

    #[test]
    fn making_a_token_needs_a_scope_and_an_aud() {
        assert!(matches!(
            output(&["--aud", AUD]).0,
            Err(JwtCommandError::NoScope)
        ));
        assert!(matches!(
            output(&["--scope", "patient/*.read"]).0,
            Err(JwtCommandError::NoAud)
        ));
    }

    #[test]
    fn decode_lists_broken_rules_and_what_it_could_not_check() {
        let (result, text) = output(&["--decode", "Bearer abc.def"]);
        assert!(!result.unwrap());
        assert!(
            text.contains("verdict: refused with 400 BAD_REQUEST"),
            "{text}"
        );
        assert!(text.contains("jwt.parts: "), "{text}");
        assert!(
            text.contains("not checked: claim.aud (pass --aud)"),
            "{text}"
        );
    }
}
