//! The FHIR resource claims of a GP Connect JWT: `requesting_device`,
//! `requesting_organization` and `requesting_practitioner`, minimal STU3 resources (DSTU2 in
//! GP Connect 0.7, which adds `requested_record`) with the elements the audit page requires. A claim of the wrong resource type, with an element its
//! STU3 type does not have, or lacking what the spec requires is an invalid resource (422), as
//! the assurance suite expects of providers (`JWT.feature`).

use std::borrow::Cow;

use super::findings::{Findings, Rule};
use super::jwt::shorten;
use super::view::{Json, Object};
use crate::config::elements::Elements;
use crate::wire::systems::{
    DSTU2_NHS_NUMBER, DSTU2_ODS_CODE, DSTU2_SDS_USER_ID, ODS_CODE, SDS_ROLE_PROFILE_ID, SDS_USER_ID,
};

/// The FHIR version the claims are resources of, with what differs between them.
#[derive(Clone, Copy)]
pub enum Version<'e> {
    /// GP Connect 1.x, with the element tables to read them against (`None` skips that).
    Stu3(Option<&'e Elements>),
    /// GP Connect 0.7 (Access Record HTML).
    Dstu2,
}

impl Version<'_> {
    fn label(self) -> &'static str {
        match self {
            Version::Stu3(_) => "FHIR STU3",
            Version::Dstu2 => "FHIR DSTU2",
        }
    }

    /// The ODS code system, and the other version's, which consumers mix up.
    fn ods_code(self) -> (&'static str, &'static str) {
        match self {
            Version::Stu3(_) => (ODS_CODE, DSTU2_ODS_CODE),
            Version::Dstu2 => (DSTU2_ODS_CODE, ODS_CODE),
        }
    }

    fn sds_user_id(self) -> &'static str {
        match self {
            Version::Stu3(_) => SDS_USER_ID,
            Version::Dstu2 => DSTU2_SDS_USER_ID,
        }
    }

    /// The other version's GP Connect, for hints.
    fn other(self) -> &'static str {
        match self {
            Version::Stu3(_) => "GP Connect 0.x",
            Version::Dstu2 => "GP Connect 1.x",
        }
    }
}

/// GP Connect 0.7's `requested_record`: the Patient (by NHS number) for a patient scope, the
/// Organization (by ODS code) for an organisation scope.
pub fn requested_record(claim: Option<Json>, scope: Option<&str>, findings: &mut Findings) {
    let Some(record) = claim.and_then(Json::object) else {
        return;
    };
    let (kind, system, what) = if scope.is_some_and(|s| s.starts_with("organization/")) {
        (
            "Organization",
            DSTU2_ODS_CODE,
            "the organisation's ODS code",
        )
    } else {
        ("Patient", DSTU2_NHS_NUMBER, "the patient's NHS number")
    };
    let found = record.get("resourceType").and_then(Json::as_str);
    if found.as_deref() != Some(kind) {
        let got = record
            .get("resourceType")
            .map_or_else(|| "none".to_owned(), |t| t.describe());
        findings.fail(Rule::RequestedRecord, format!("JWT claim requested_record must be a FHIR {kind} resource for requested_scope `{}`, got resourceType {got}", shorten(scope.unwrap_or(""))));
        return;
    }
    let read = Reader::new(
        "requested_record",
        Rule::RequestedRecord,
        false,
        Version::Dstu2,
    );
    let ids = read.identifiers(&record, findings);
    if !ids
        .iter()
        .any(|i| i.system.as_deref() == Some(system) && i.value.is_some())
    {
        findings.fail(
            Rule::RequestedRecord,
            format!("JWT claim requested_record.identifier must hold {what} with system {system}"),
        );
    }
}

pub fn device(claim: Option<Json>, version: Version, findings: &mut Findings) {
    let read = Reader::new("requesting_device", Rule::Device, false, version);
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

pub fn organization(claim: Option<Json>, version: Version, findings: &mut Findings) {
    let read = Reader::new(
        "requesting_organization",
        Rule::Organization,
        false,
        version,
    );
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
    let (system, other) = version.ods_code();
    if !ids
        .iter()
        .any(|i| i.system.as_deref() == Some(system) && i.value.is_some())
    {
        let hint = if ids.iter().any(|i| i.system.as_deref() == Some(other)) {
            format!(" ({other} is the {} system)", version.other())
        } else {
            String::new()
        };
        findings.fail(Rule::Organization, format!("JWT claim requesting_organization.identifier must hold the organisation's ODS code with system {system}{hint}"));
    }
}

/// Checks the practitioner and returns its `id`, which `sub` must equal. `lenient` turns the
/// spec's SHALLs into notices, as it does for record migration.
pub fn practitioner<'v>(
    claim: Option<Json<'v>>,
    version: Version,
    lenient: bool,
    findings: &mut Findings,
) -> Option<Cow<'v, str>> {
    let read = Reader::new(
        "requesting_practitioner",
        Rule::Practitioner,
        lenient,
        version,
    );
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
    let sds_user_id = version.sds_user_id();
    if !has(sds_user_id) {
        findings.fail_or_notice(lenient, Rule::Practitioner, format!("JWT claim requesting_practitioner.identifier must hold the user's SDS user ID (or UNK without a smartcard) with system {sds_user_id}"));
    }
    // The spec warns that real consumers often leave out the last two identifiers, so they
    // are reported but never refused. 0.7 carries the role in practitionerRole instead.
    if matches!(version, Version::Stu3(_)) && !has(SDS_ROLE_PROFILE_ID) {
        findings.notice(Rule::PractitionerRoleProfile, format!("JWT claim requesting_practitioner.identifier should hold the user's SDS role profile ID (or UNK without a smartcard) with system {SDS_ROLE_PROFILE_ID}"));
    }
    let local = ids.iter().any(|i| {
        i.value.is_some()
            && i.system
                .as_deref()
                .is_some_and(|s| s != sds_user_id && s != SDS_ROLE_PROFILE_ID)
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
    /// The FHIR version, with the STU3 element tables where they are read against.
    version: Version<'e>,
}

impl<'e> Reader<'e> {
    fn new(claim: &'static str, rule: Rule, lenient: bool, version: Version<'e>) -> Self {
        Self {
            claim,
            rule,
            lenient,
            version,
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
        let Version::Stu3(Some(stu3)) = self.version else {
            return;
        };
        let Some(elements) = stu3.of(kind) else {
            return;
        };
        // The element is named in the message, but not in the claim path that the logs keep:
        // it is consumer text.
        for name in object.names() {
            if root && name == "resourceType" {
                continue;
            }
            if !elements.has(name) {
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
                    "JWT claim {claim}.identifier must be a list of Identifier ({}), got {}",
                    self.version.label(),
                    list.describe()
                ),
            );
            return Vec::new();
        };
        let text = |o: &Object<'v>, k: &str| o.get(k).and_then(|v| v.text());
        items
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
        if matches!(self.version, Version::Dstu2) {
            return self.dstu2_human_name(name, findings);
        }
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
        let objects = names.clone().map(Json::object);
        let complete = objects
            .clone()
            .flatten()
            .any(|n| n.get("family").and_then(Json::text).is_some() && string_list(n.get("given")));
        if !complete {
            let got = names
                .clone()
                .next()
                .map_or_else(|| "an empty list".to_owned(), |n| n.shown());
            fail(format!("JWT claim requesting_practitioner.name must hold a HumanName with family (a string) and given (a list of strings), got {got}"));
        }
        for (i, n) in objects.clone().enumerate() {
            let prefix = n.and_then(|n| n.get("prefix"));
            if prefix.is_some_and(|p| !string_list(Some(p))) {
                fail(format!("JWT claim requesting_practitioner.name[{i}].prefix must be a list of strings (the user's titles)"));
            }
        }
        for (i, n) in objects.enumerate() {
            if let Some(n) = n {
                let path = format_args!("requesting_practitioner.name[{i}]");
                self.elements(&n, &path, ("HumanName", false), findings);
            }
        }
    }
}

impl Reader<'_> {
    /// GP Connect 0.7's `name`: one DSTU2 HumanName, with `family` and `given` lists of strings.
    fn dstu2_human_name(&self, name: Option<Json>, findings: &mut Findings) {
        let mut fail =
            |message: String| findings.fail_or_notice(self.lenient, Rule::Practitioner, message);
        let name = match name {
            Some(one) if one.is_object() => one.object().unwrap_or_else(Object::empty),
            Some(list) if list.is_array() => {
                return fail("JWT claim requesting_practitioner.name must be one HumanName (FHIR DSTU2); a list is the STU3 (GP Connect 1.x) form".to_owned());
            }
            Some(other) if !other.is_null() => {
                return fail(format!(
                    "JWT claim requesting_practitioner.name must be a HumanName, got {}",
                    other.describe()
                ));
            }
            _ => {
                return fail("JWT claim requesting_practitioner.name is missing; it must be a HumanName with family and given".to_owned());
            }
        };
        for part in ["family", "given"] {
            if !string_list(name.get(part)) {
                fail(format!("JWT claim requesting_practitioner.name.{part} must be a list of strings (FHIR DSTU2 HumanName)"));
            }
        }
        if name.get("prefix").is_some_and(|p| !string_list(Some(p))) {
            fail("JWT claim requesting_practitioner.name.prefix must be a list of strings (the user's titles)".to_owned());
        }
    }
}

/// One `Identifier`, with empty strings read as absent.
struct Identifier<'v> {
    system: Option<Cow<'v, str>>,
    value: Option<Cow<'v, str>>,
}

/// Whether `v` is a non-empty list of strings, as HumanName's `given` and `prefix` are (and, in
/// DSTU2, `family`).
fn string_list(v: Option<Json>) -> bool {
    v.and_then(Json::array)
        .is_some_and(|mut a| a.len() > 0 && a.all(|s| s.text().is_some()))
}

#[cfg(test)]
mod tests {
    use super::super::jwt::tests::{good_payload, shipped_elements};
    use super::super::view::{Document, Scratch};
    use super::*;

    #[allow(non_snake_case)]
    fn STU3() -> Version<'static> {
        Version::Stu3(Some(shipped_elements()))
    }
    use serde_json::{json, Value};

    /// Runs `check` on the claim as the payload view holds it.
    fn on<T>(claim: &Value, check: impl FnOnce(Option<Json>) -> T) -> T {
        let bytes = json!({ "c": claim }).to_string().into_bytes();
        let mut work = Scratch::default();
        let document = Document::parse(&bytes, &mut work).unwrap();
        check(document.root().object().unwrap().get("c"))
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
        on(&d, |c| device(c, Version::Stu3(None), &mut f));
        assert!(f.passed(), "no tables, no element rule");
    }
}
