//! What check 10 found: every broken rule, each with a message that names the claim (or header)
//! and the rule, and the one GP Connect error the whole list answers with.

use http::header::WWW_AUTHENTICATE;
use http::HeaderValue;

use crate::config::interactions::JwtRules;
use crate::config::rejection::{ids, Placeholder, Rejection};

/// Which GP Connect error a broken rule answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `BAD_REQUEST` (400): a malformed token, a missing or wrong claim value, or an
    /// interaction ID that does not fit the request.
    BadRequest,
    /// `INVALID_RESOURCE` (422): a claim's FHIR resource fails validation (its type, an
    /// element STU3 does not have, or what GP Connect requires of it).
    InvalidResource,
}

impl Answer {
    /// The status and GP Connect code, e.g. `400 BAD_REQUEST`.
    pub fn label(self) -> &'static str {
        match self {
            Answer::BadRequest => "400 BAD_REQUEST",
            Answer::InvalidResource => "422 INVALID_RESOURCE",
        }
    }
}

/// What a refusal of the bearer token says in `WWW-Authenticate` (RFC 6750 section 3.1,
/// which GP Connect makes a SHALL for providers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// No token, or another scheme: the RFC says to send no error code then.
    Bearer,
    /// The `Authorization` header is malformed: `invalid_request`.
    InvalidRequest,
    /// The token is malformed, expired or invalid: `invalid_token`.
    InvalidToken,
}

impl Challenge {
    /// The `WWW-Authenticate` header value.
    pub fn header(self) -> &'static str {
        match self {
            Challenge::Bearer => "Bearer",
            Challenge::InvalidRequest => "Bearer error=\"invalid_request\"",
            Challenge::InvalidToken => "Bearer error=\"invalid_token\"",
        }
    }
}

/// Every rule of check 10. README.md lists each by its id (a test checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `authorization`: an `Authorization: Bearer <token>` header is sent.
    Authorization,
    /// `jwt.parts`: three parts separated by dots (an unsigned token ends with `.`).
    Parts,
    /// `jwt.base64url`: each part is base64url without padding.
    Base64url,
    /// `jwt.json`: header and payload are JSON objects.
    Json,
    /// `jwt.alg`: `none`, or on an endpoint with a `jwt_key` an `alg` that key verifies.
    Alg,
    /// `jwt.typ`: the header's `typ` is `JWT`.
    Typ,
    /// `jwt.signature`: empty for `alg` `none`, else it verifies with the endpoint's `jwt_key`.
    Signature,
    /// `claim.present`: each required claim is there, not null and not empty.
    ClaimPresent,
    /// `claim.type`: strings are strings, times integers, the resource claims JSON objects.
    ClaimType,
    /// `claim.iss`: `iss` is the consumer system's http(s) URL.
    Iss,
    /// `claim.exp`: `exp` is exactly `iat` + 300 seconds.
    Exp,
    /// `claim.expired`: `exp` has not passed.
    Expired,
    /// `claim.reason_for_request`: `directcare`, or `migration` for the migrate interactions.
    ReasonForRequest,
    /// `claim.requested_scope`: the interaction's scope, with `conf/N` or `conf/R` where allowed.
    RequestedScope,
    /// `claim.aud`: `aud` is the endpoint's service root, exactly.
    Aud,
    /// `claim.sub`: `sub` equals `requesting_practitioner.id`.
    Sub,
    /// `requested_record` (GP Connect 0.7): the Patient (NHS number) or Organization (ODS code)
    /// the request is for.
    RequestedRecord,
    /// `claim.resource_type`: the resource claims are a Device, an Organization and a
    /// Practitioner (422, as the assurance suite expects of providers).
    ResourceType,
    /// `requesting_device`: the Device claim has an identifier, a model and a version.
    Device,
    /// `requesting_organization`: the Organization claim has a name and its ODS code.
    Organization,
    /// `requesting_practitioner`: the Practitioner claim has an id, an STU3 name and an SDS user id.
    Practitioner,
    /// Reported, never enforced: the spec warns consumers often omit it.
    PractitionerRoleProfile,
    /// Reported, never enforced: the spec warns consumers often omit it.
    PractitionerLocalIdentifier,
    /// `interaction`: `Ssp-InteractionID` fits the method, path and a search's query.
    Interaction,
}

impl Rule {
    /// Every rule, in README.md's order, for the tests that walk them all.
    pub const ALL: [Rule; 24] = [
        Rule::Authorization,
        Rule::Parts,
        Rule::Base64url,
        Rule::Json,
        Rule::Alg,
        Rule::Typ,
        Rule::Signature,
        Rule::ClaimPresent,
        Rule::ClaimType,
        Rule::Iss,
        Rule::Exp,
        Rule::Expired,
        Rule::ReasonForRequest,
        Rule::RequestedScope,
        Rule::Aud,
        Rule::Sub,
        Rule::RequestedRecord,
        Rule::ResourceType,
        Rule::Device,
        Rule::Organization,
        Rule::Practitioner,
        Rule::PractitionerRoleProfile,
        Rule::PractitionerLocalIdentifier,
        Rule::Interaction,
    ];

    /// The rule's name in warnings, logs and the README.
    pub fn id(self) -> &'static str {
        match self {
            Rule::Authorization => "authorization",
            Rule::Parts => "jwt.parts",
            Rule::Base64url => "jwt.base64url",
            Rule::Json => "jwt.json",
            Rule::Alg => "jwt.alg",
            Rule::Typ => "jwt.typ",
            Rule::Signature => "jwt.signature",
            Rule::ClaimPresent => "claim.present",
            Rule::ClaimType => "claim.type",
            Rule::Iss => "claim.iss",
            Rule::Exp => "claim.exp",
            Rule::Expired => "claim.expired",
            Rule::ReasonForRequest => "claim.reason_for_request",
            Rule::RequestedScope => "claim.requested_scope",
            Rule::Aud => "claim.aud",
            Rule::Sub => "claim.sub",
            Rule::RequestedRecord => "requested_record",
            Rule::ResourceType => "claim.resource_type",
            Rule::Device => "requesting_device",
            Rule::Organization => "requesting_organization",
            Rule::Practitioner => "requesting_practitioner",
            Rule::PractitionerRoleProfile => "requesting_practitioner.role_profile",
            Rule::PractitionerLocalIdentifier => "requesting_practitioner.local_identifier",
            Rule::Interaction => "interaction",
        }
    }

    /// The error breaking this rule answers with: the resource rules are 422, the rest 400.
    pub fn answer(self) -> Answer {
        match self {
            Rule::ResourceType
            | Rule::RequestedRecord
            | Rule::Device
            | Rule::Organization
            | Rule::Practitioner
            | Rule::PractitionerRoleProfile
            | Rule::PractitionerLocalIdentifier => Answer::InvalidResource,
            _ => Answer::BadRequest,
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule broken.
    pub rule: Rule,
    /// What is wrong and how to fix it, for the consumer (claim values cut to 60 characters).
    pub message: String,
}

impl Finding {
    /// The claim the finding is about (`sub`, `requesting_practitioner.name[0].prefix`), when
    /// its message opens with `JWT claim <path>`: a path of name characters under one of the
    /// claims GP Connect requires, so it can be logged where the message, which may quote the
    /// claim's value, cannot.
    pub fn claim(&self) -> Option<&str> {
        let rest = self.message.strip_prefix("JWT claim ")?;
        let path = &rest[..rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_.[]".contains(c)))
            .unwrap_or(rest.len())];
        let root = &path[..path.find(['.', '[']).unwrap_or(path.len())];
        super::claims::is_claim(root).then_some(path)
    }

    /// The rule's id, with the claim when the id does not already say it:
    /// `claim.present (sub)`, `claim.aud`, `requesting_device (requesting_device.version)`.
    fn named(&self) -> String {
        let id = self.rule.id();
        match self.claim() {
            Some(claim) if !id.ends_with(claim) => format!("{id} ({claim})"),
            _ => id.to_owned(),
        }
    }
}

/// Everything check 10 found about one request or token.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Findings {
    /// Broken rules: `enforce` mode refuses the request for any of them.
    pub violations: Vec<Finding>,
    /// Departures the spec tolerates: reported in `report` mode, never refused.
    pub notices: Vec<Finding>,
    /// Set when the bearer token (or its header) broke a rule: what the refusal challenges.
    pub challenge: Option<Challenge>,
}

impl Findings {
    /// Records a broken rule that refuses the request in `enforce` mode.
    pub fn fail(&mut self, rule: Rule, message: impl Into<String>) {
        self.violations.push(Finding {
            rule,
            message: message.into(),
        });
    }

    /// Records a departure the spec tolerates: reported, never refused.
    pub fn notice(&mut self, rule: Rule, message: impl Into<String>) {
        self.notices.push(Finding {
            rule,
            message: message.into(),
        });
    }

    /// Records a broken rule as a violation, or as a notice when the spec only says SHOULD.
    pub fn fail_or_notice(&mut self, lenient: bool, rule: Rule, message: impl Into<String>) {
        if lenient {
            self.notice(rule, message);
        } else {
            self.fail(rule, message);
        }
    }

    /// Whether no rule was broken (notices do not count).
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// What the violations answer with, if any: `BAD_REQUEST` when any of them is a bad
    /// request, else `INVALID_RESOURCE`.
    pub fn answer(&self) -> Option<Answer> {
        let mut answers = self.violations.iter().map(|f| f.rule.answer());
        let first = answers.next()?;
        Some(
            if first == Answer::BadRequest || answers.any(|a| a == Answer::BadRequest) {
                Answer::BadRequest
            } else {
                Answer::InvalidResource
            },
        )
    }

    /// The rejection answering the violations, if any, in the error form of the rule set's
    /// GP Connect version; its diagnostics list every violation.
    pub fn rejection(&self, rules: JwtRules) -> Option<Rejection> {
        let answer = self.answer()?;
        let diagnostics = self
            .violations
            .iter()
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let dstu2 = rules == JwtRules::Gpconnect07;
        let id = match (answer, dstu2) {
            (Answer::BadRequest, false) => ids::BAD_REQUEST,
            (Answer::InvalidResource, false) => ids::INVALID_RESOURCE,
            (Answer::BadRequest, true) => ids::DSTU2_BAD_REQUEST,
            (Answer::InvalidResource, true) => ids::DSTU2_INVALID_RESOURCE,
        };
        let rejection = Rejection::new(id).with(Placeholder::Diagnostics, diagnostics);
        Some(match self.challenge {
            Some(challenge) => rejection.with_header(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge.header()),
            ),
            None => rejection,
        })
    }

    /// Violations then notices by rule and claim, never a value: what the logs and the
    /// journal keep (the consumer gets the whole messages). E.g. `claim.iss; claim.present (sub)`.
    pub fn summary(&self) -> String {
        self.violations
            .iter()
            .chain(&self.notices)
            .map(Finding::named)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Violations then notices, each as `rule-id: message`, for the consumer's warnings.
    pub fn lines(&self) -> Vec<String> {
        self.violations
            .iter()
            .chain(&self.notices)
            .map(|f| format!("{}: {}", f.rule.id(), f.message))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_bad_request_makes_the_answer_a_bad_request_listing_everything() {
        let mut f = Findings::default();
        f.fail(Rule::Device, "JWT claim requesting_device.model is missing");
        assert_eq!(
            f.rejection(JwtRules::Gpconnect1).unwrap().error,
            ids::INVALID_RESOURCE
        );
        f.fail(Rule::Exp, "JWT claim exp must be iat + 300");
        let r = f.rejection(JwtRules::Gpconnect1).unwrap();
        assert_eq!(r.error, ids::BAD_REQUEST);
        assert_eq!(
            r.value(Placeholder::Diagnostics),
            Some("JWT claim requesting_device.model is missing; JWT claim exp must be iat + 300")
        );
    }

    #[test]
    fn notices_never_refuse() {
        let mut f = Findings::default();
        f.notice(Rule::PractitionerLocalIdentifier, "no local identifier");
        assert!(f.passed() && f.rejection(JwtRules::Gpconnect1).is_none());
        assert_eq!(
            f.lines(),
            ["requesting_practitioner.local_identifier: no local identifier"]
        );
    }

    #[test]
    fn the_summary_names_rules_and_claims_but_no_value() {
        let mut f = Findings::default();
        f.fail(
            Rule::Iss,
            "JWT claim iss must be the consumer system's URL, got `LEAKED`",
        );
        f.fail(Rule::ClaimPresent, "JWT claim sub is missing");
        f.fail(
            Rule::Practitioner,
            "JWT claim requesting_practitioner.name[0].prefix must be a list",
        );
        f.fail(Rule::ClaimType, "JWT claim LEAKED must be a string");
        f.notice(Rule::PractitionerLocalIdentifier, "no local identifier");
        assert_eq!(
            f.summary(),
            "claim.iss; claim.present (sub); requesting_practitioner (requesting_practitioner.name[0].prefix); \
             claim.type; requesting_practitioner.local_identifier"
        );
    }

    #[test]
    fn rule_ids_are_unique() {
        let mut ids: Vec<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
    }
}
