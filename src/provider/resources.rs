//! The three FHIR resource claims of a GP Connect 1.x JWT: `requesting_device`,
//! `requesting_organization` and `requesting_practitioner`, minimal STU3 resources with the
//! elements the audit page requires. A claim of the wrong resource type, with an element its
//! STU3 type does not have, or lacking what the spec requires is an invalid resource (422), as
//! the assurance suite expects of providers (`JWT.feature`).

use std::borrow::Cow;

use super::findings::{Findings, Rule};
use super::jwt::shorten;
use super::view::{Json, Object};
use crate::config::elements::Elements;
use crate::wire::systems::{ODS_CODE, SDS_ROLE_PROFILE_ID, SDS_USER_ID};

/// The GP Connect 0.x (DSTU2) system consumers still send by mistake.
const DSTU2_ODS_CODE: &str = "http://fhir.nhs.net/Id/ods-organization-code";

pub fn device(claim: Option<Json>, stu3: Option<&Elements>, findings: &mut Findings) {
    let read = Reader::new("requesting_device", Rule::Device, false, stu3);
    let Some(device) = read.resource(claim, "Device", findings) else {
        return;
    };
    let ids = read.identifiers(&device, findings);
    if !ids.iter().any(|i| i.system.is_some() && i.value.is_some()) {
        findings.fail(Rule::Device, "JWT claim requesting_device.identifier must hold an identifier with a system (a consumer-defined URL) and a value (the device or system identifier)");
    }
    read.text(
        &device,
        "model",
        "the consumer product or system name",
        findings,
    );
    read.text(
        &device,
        "version",
        "the consumer product or system version",
        findings,
    );
}

pub fn organization(claim: Option<Json>, stu3: Option<&Elements>, findings: &mut Findings) {
    let read = Reader::new("requesting_organization", Rule::Organization, false, stu3);
    let Some(org) = read.resource(claim, "Organization", findings) else {
        return;
    };
    read.text(
        &org,
        "name",
        "the name of the organisation the request comes from",
        findings,
    );
    let ids = read.identifiers(&org, findings);
    if !ids
        .iter()
        .any(|i| i.system.as_deref() == Some(ODS_CODE) && i.value.is_some())
    {
        let hint = if ids
            .iter()
            .any(|i| i.system.as_deref() == Some(DSTU2_ODS_CODE))
        {
            format!(" ({DSTU2_ODS_CODE} is the GP Connect 0.x system)")
        } else {
            String::new()
        };
        findings.fail(Rule::Organization, format!("JWT claim requesting_organization.identifier must hold the organisation's ODS code with system {ODS_CODE}{hint}"));
    }
}

/// Checks the practitioner and returns its `id`, which `sub` must equal. `lenient` turns the
/// spec's SHALLs into notices, as it does for record migration.
pub fn practitioner<'v>(
    claim: Option<Json<'v>>,
    stu3: Option<&Elements>,
    lenient: bool,
    findings: &mut Findings,
) -> Option<Cow<'v, str>> {
    let read = Reader::new("requesting_practitioner", Rule::Practitioner, lenient, stu3);
    let practitioner = read.resource(claim, "Practitioner", findings)?;
    let id = read.text(
        &practitioner,
        "id",
        "the logged-on user's logical id, equal to the sub claim",
        findings,
    );
    read.human_name(practitioner.get("name"), findings);
    let ids = read.identifiers(&practitioner, findings);
    let has = |system: &str| {
        ids.iter()
            .any(|i| i.system.as_deref() == Some(system) && i.value.is_some())
    };
    if !has(SDS_USER_ID) {
        findings.fail_or_notice(lenient, Rule::Practitioner, format!("JWT claim requesting_practitioner.identifier must hold the user's SDS user ID (or UNK without a smartcard) with system {SDS_USER_ID}"));
    }
    // The spec warns that real consumers often leave out the last two identifiers, so they
    // are reported but never refused.
    if !has(SDS_ROLE_PROFILE_ID) {
        findings.notice(Rule::PractitionerRoleProfile, format!("JWT claim requesting_practitioner.identifier should hold the user's SDS role profile ID (or UNK without a smartcard) with system {SDS_ROLE_PROFILE_ID}"));
    }
    let local = ids.iter().any(|i| {
        i.value.is_some()
            && i.system
                .as_deref()
                .is_some_and(|s| s != SDS_USER_ID && s != SDS_ROLE_PROFILE_ID)
    });
    if !local {
        findings.notice(Rule::PractitionerLocalIdentifier, "JWT claim requesting_practitioner.identifier should hold the user's local identifier (a consumer-defined system and the user's id in it)");
    }
    id
}

/// Reads one resource claim with its rule and strictness.
struct Reader<'e> {
    claim: &'static str,
    rule: Rule,
    /// The spec's SHALLs are SHOULDs (record migration): they become notices.
    lenient: bool,
    /// The STU3 element tables; `None` does not look for unknown elements.
    stu3: Option<&'e Elements>,
}

impl<'e> Reader<'e> {
    fn new(claim: &'static str, rule: Rule, lenient: bool, stu3: Option<&'e Elements>) -> Self {
        Self {
            claim,
            rule,
            lenient,
            stu3,
        }
    }

    /// The claim as a resource of the given type with only STU3 elements, or `None` (after
    /// saying why) when it is not of that type. A claim that is absent or not an object was
    /// already reported by the claim rules.
    fn resource<'v>(
        &self,
        value: Option<Json<'v>>,
        kind: &str,
        findings: &mut Findings,
    ) -> Option<Object<'v>> {
        let claim = self.claim;
        let resource = value?.object()?;
        let found = resource.get("resourceType");
        match found.and_then(|t| t.as_str()) {
            Some(t) if t == kind => {
                self.elements(&resource, &claim, (kind, true), findings);
                return Some(resource);
            }
            _ => {}
        }
        match found {
            None => findings.fail(
                Rule::ResourceType,
                format!("JWT claim {claim} has no resourceType; it must be a FHIR {kind} resource"),
            ),
            Some(other) => findings.fail(
                Rule::ResourceType,
                format!(
                    "JWT claim {claim} must be a FHIR {kind} resource, got resourceType {}",
                    other.describe()
                ),
            ),
        }
        None
    }

    /// Every member of `object` (at `path`, of STU3 type `kind`) that the type does not have,
    /// as a FHIR parser refuses it; a resource (`root`) also carries `resourceType`. Never
    /// lenient: the resource would not parse.
    fn elements(
        &self,
        object: &Object,
        path: &dyn std::fmt::Display,
        (kind, root): (&str, bool),
        findings: &mut Findings,
    ) {
        let Some(stu3) = self.stu3 else { return };
        // The element is named in the message, but not in the claim path that the logs keep:
        // it is consumer text.
        for name in object.names() {
            if root && name == "resourceType" {
                continue;
            }
            if stu3.has(kind, name) == Some(false) {
                findings.fail(self.rule, format!("JWT claim {path} has the element `{}`, which FHIR STU3 {kind} does not have; remove it or correct its spelling", shorten(name)));
            }
        }
    }

    /// A required non-empty string element.
    fn text<'v>(
        &self,
        resource: &Object<'v>,
        name: &str,
        what: &str,
        findings: &mut Findings,
    ) -> Option<Cow<'v, str>> {
        let claim = self.claim;
        let value = resource.get(name);
        if let Some(text) = value.and_then(|v| v.text()) {
            return Some(text);
        }
        let message = match value {
            Some(other) if !other.is_null() => format!(
                "JWT claim {claim}.{name} must be {what} (a non-empty string), got {}",
                other.describe()
            ),
            _ => format!("JWT claim {claim}.{name} is missing; it must be {what}"),
        };
        findings.fail_or_notice(self.lenient, self.rule, message);
        None
    }

    /// The resource's `identifier` list; anything in it that is not an Identifier is reported.
    fn identifiers<'v>(
        &self,
        resource: &Object<'v>,
        findings: &mut Findings,
    ) -> Vec<Identifier<'v>> {
        let claim = self.claim;
        let Some(list) = resource.get("identifier") else {
            return Vec::new();
        };
        let Some(items) = list.array() else {
            findings.fail_or_notice(
                self.lenient,
                self.rule,
                format!(
                    "JWT claim {claim}.identifier must be a list of Identifier (FHIR STU3), got {}",
                    list.describe()
                ),
            );
            return Vec::new();
        };
        let text = |o: &Object<'v>, k: &str| o.get(k).and_then(|v| v.text());
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item.object() {
                Some(o) => {
                    let path = format_args!("{claim}.identifier[{i}]");
                    self.elements(&o, &path, ("Identifier", false), findings);
                    Some(Identifier {
                        system: text(&o, "system"),
                        value: text(&o, "value"),
                    })
                }
                None => {
                    findings.fail_or_notice(
                        self.lenient,
                        self.rule,
                        format!(
                            "JWT claim {claim}.identifier[{i}] must be an Identifier object, got {}",
                            item.describe()
                        ),
                    );
                    None
                }
            })
            .collect()
    }

    /// `name`: a list of STU3 HumanName, one with a family name (a string) and given names (a
    /// list).
    fn human_name(&self, name: Option<Json>, findings: &mut Findings) {
        let mut fail =
            |message: String| findings.fail_or_notice(self.lenient, Rule::Practitioner, message);
        let names = match name {
            Some(list) if list.is_array() => list.array().unwrap_or_default(),
            Some(single) if single.is_object() => {
                return fail("JWT claim requesting_practitioner.name must be a list of HumanName (FHIR STU3); a single object is the DSTU2 (GP Connect 0.x) form".to_owned());
            }
            Some(other) if !other.is_null() => {
                return fail(format!(
                    "JWT claim requesting_practitioner.name must be a list of HumanName, got {}",
                    other.describe()
                ));
            }
            _ => {
                return fail("JWT claim requesting_practitioner.name is missing; it must be a list of HumanName with family and given".to_owned());
            }
        };
        let strings = |v: Option<Json>| {
            v.and_then(Json::array)
                .is_some_and(|a| !a.is_empty() && a.iter().all(|s| s.text().is_some()))
        };
        let objects: Vec<Option<Object>> = names.iter().map(|n| n.object()).collect();
        let complete = objects
            .iter()
            .flatten()
            .any(|n| n.get("family").and_then(Json::text).is_some() && strings(n.get("given")));
        if !complete {
            let got = names
                .first()
                .map_or_else(|| "an empty list".to_owned(), |n| n.shown());
            fail(format!("JWT claim requesting_practitioner.name must hold a HumanName with family (a string) and given (a list of strings), got {got}"));
        }
        for (i, n) in objects.iter().enumerate() {
            let prefix = n.as_ref().and_then(|n| n.get("prefix"));
            if prefix.is_some_and(|p| !strings(Some(p))) {
                fail(format!("JWT claim requesting_practitioner.name[{i}].prefix must be a list of strings (the user's titles)"));
            }
        }
        for (i, n) in objects.iter().enumerate() {
            if let Some(n) = n {
                let path = format_args!("requesting_practitioner.name[{i}]");
                self.elements(n, &path, ("HumanName", false), findings);
            }
        }
    }
}

/// One `Identifier`, with empty strings read as absent.
struct Identifier<'v> {
    system: Option<Cow<'v, str>>,
    value: Option<Cow<'v, str>>,
}

#[cfg(test)]
mod tests {
    use super::super::jwt::tests::{good_payload, shipped_elements};
    use super::*;

    #[allow(non_snake_case)]
    fn STU3() -> Option<&'static Elements> {
        Some(shipped_elements())
    }
    use serde_json::{json, Value};

    /// Runs `check` on the claim as the payload view holds it.
    fn on<T>(claim: &Value, check: impl FnOnce(Option<Json>) -> T) -> T {
        let bytes = json!({ "c": claim }).to_string().into_bytes();
        let payload = Object::parse(&bytes).unwrap();
        check(payload.get("c"))
    }

    fn rules(f: &[super::super::findings::Finding]) -> Vec<Rule> {
        f.iter().map(|v| v.rule).collect()
    }

    fn claim(name: &str) -> Value {
        good_payload()[name].clone()
    }

    fn practitioner_with(changes: Value, lenient: bool) -> Findings {
        let mut p = claim("requesting_practitioner");
        for (k, v) in changes.as_object().unwrap() {
            p[k] = v.clone();
        }
        let mut f = Findings::default();
        on(&p, |c| {
            practitioner(c, STU3(), lenient, &mut f);
        });
        f
    }

    #[test]
    fn the_spec_example_resources_pass() {
        let mut f = Findings::default();
        on(&claim("requesting_device"), |c| device(c, STU3(), &mut f));
        on(&claim("requesting_organization"), |c| {
            organization(c, STU3(), &mut f)
        });
        let resource = claim("requesting_practitioner");
        let id = on(&resource, |c| {
            practitioner(c, STU3(), false, &mut f).map(Cow::into_owned)
        });
        assert_eq!((id.as_deref(), f), (Some("10019"), Findings::default()));
    }

    #[test]
    fn a_wrong_resource_type_is_named_and_stops_there() {
        let mut f = Findings::default();
        on(&claim("requesting_organization"), |c| {
            device(c, STU3(), &mut f)
        });
        assert_eq!(rules(&f.violations), [Rule::ResourceType]);
        assert_eq!(
            f.violations[0].message,
            "JWT claim requesting_device must be a FHIR Device resource, got resourceType string \"Organization\""
        );
    }

    #[test]
    fn device_needs_identifier_model_and_version() {
        let mut f = Findings::default();
        on(
            &json!({"resourceType": "Device", "identifier": [{"value": "x"}], "model": 3}),
            |c| device(c, STU3(), &mut f),
        );
        assert_eq!(rules(&f.violations), [Rule::Device; 3]);
        assert!(f.violations[1]
            .message
            .contains("requesting_device.model must be"));
        assert!(f.violations[2]
            .message
            .contains("requesting_device.version is missing"));
    }

    #[test]
    fn organization_needs_a_name_and_an_ods_code() {
        let mut f = Findings::default();
        let org = json!({"resourceType": "Organization", "identifier": [{"system": DSTU2_ODS_CODE, "value": "A1"}]});
        on(&org, |c| organization(c, STU3(), &mut f));
        assert_eq!(rules(&f.violations), [Rule::Organization; 2]);
        assert!(f.violations[1].message.contains("GP Connect 0.x system"));
    }

    #[test]
    fn practitioner_needs_id_name_and_sds_user_id() {
        let f = practitioner_with(
            json!({"id": "", "name": {"family": ["Jones"]}, "identifier": "x"}),
            false,
        );
        let messages: Vec<&str> = f.violations.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            rules(&f.violations),
            [Rule::Practitioner; 4],
            "{messages:#?}"
        );
        assert!(messages[1].contains("DSTU2"));
        let f = practitioner_with(json!({"name": [{"family": "Jones"}]}), false);
        assert!(f.violations[0]
            .message
            .contains("given (a list of strings)"));
        let f = practitioner_with(
            json!({"name": [{"family": "Jones", "given": ["C"], "prefix": "Dr"}]}),
            false,
        );
        assert!(f.violations[0].message.contains("prefix must be a list"));
    }

    #[test]
    fn unk_is_an_sds_user_id_and_missing_optional_identifiers_are_only_notices() {
        let ids = json!([{"system": SDS_USER_ID, "value": "UNK"}]);
        let f = practitioner_with(json!({"identifier": ids}), false);
        assert!(f.passed());
        assert_eq!(
            rules(&f.notices),
            [
                Rule::PractitionerRoleProfile,
                Rule::PractitionerLocalIdentifier
            ]
        );
    }

    #[test]
    fn lenient_practitioner_rules_become_notices() {
        let f = practitioner_with(json!({"id": null, "name": null, "identifier": []}), true);
        assert!(f.passed());
        assert_eq!(f.notices.len(), 5);
    }

    #[test]
    fn an_element_stu3_does_not_have_is_named_in_the_claim_and_its_parts() {
        let mut d = claim("requesting_device");
        d["invalidField"] = "Assurance Testing".into();
        d["identifier"][0]["sytem"] = "x".into();
        let mut f = Findings::default();
        on(&d, |c| device(c, STU3(), &mut f));
        let messages: Vec<&str> = f.violations.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(messages, [
            "JWT claim requesting_device has the element `invalidField`, which FHIR STU3 Device does not have; remove it or correct its spelling",
            "JWT claim requesting_device.identifier[0] has the element `sytem`, which FHIR STU3 Identifier does not have; remove it or correct its spelling",
        ]);
        assert_eq!(f.violations[0].claim(), Some("requesting_device"));
        let f = practitioner_with(
            json!({"name": [{"family": "Jones", "given": ["C"], "nickname": "CJ"}], "_id": {}}),
            true,
        );
        assert_eq!(rules(&f.violations), [Rule::Practitioner], "{f:?}");
        assert!(f.violations[0]
            .message
            .contains("requesting_practitioner.name[0] has the element `nickname`"));
        let mut f = Findings::default();
        on(&d, |c| device(c, None, &mut f));
        assert!(f.passed(), "no tables, no element rule");
    }
}
