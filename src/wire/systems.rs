//! FHIR identifier systems that several parts of ssp-sim name (check 10, the `jwt` command,
//! the demo provider, the directory): one spelling each, so they cannot drift apart.

/// The ODS organisation code system: organisations' identifiers, as `requesting_organization`
/// must carry one.
pub const ODS_CODE: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
/// The SDS user id system: the `requesting_practitioner` identifier every token must carry.
pub const SDS_USER_ID: &str = "https://fhir.nhs.uk/Id/sds-user-id";
/// The SDS role profile id system: the `requesting_practitioner` identifier that is a notice
/// when missing.
pub const SDS_ROLE_PROFILE_ID: &str = "https://fhir.nhs.uk/Id/sds-role-profile-id";

/// GP Connect 0.7 (DSTU2): the ODS organisation code system.
pub const DSTU2_ODS_CODE: &str = "http://fhir.nhs.net/Id/ods-organization-code";

/// GP Connect 0.7 (DSTU2): the SDS user id system a JWT's practitioner carries (without `/Id/`,
/// as the 0.7 audit page requires after an error in testing).
pub const DSTU2_SDS_USER_ID: &str = "http://fhir.nhs.net/sds-user-id";

/// GP Connect 0.7 (DSTU2): the NHS number system.
pub const DSTU2_NHS_NUMBER: &str = "http://fhir.nhs.net/Id/nhs-number";
