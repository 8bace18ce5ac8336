//! FHIR identifier systems that several parts of ssp-sim name (check 10, the `jwt` command,
//! the demo provider, the directory): one spelling each, so they cannot drift apart.

pub const ODS_CODE: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub const SDS_USER_ID: &str = "https://fhir.nhs.uk/Id/sds-user-id";
pub const SDS_ROLE_PROFILE_ID: &str = "https://fhir.nhs.uk/Id/sds-role-profile-id";
