//! The GP Connect STU3 profile, extension and identifier URLs the demo provider writes or
//! checks, named once.

pub const PATIENT: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1";
pub const APPOINTMENT: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Appointment-1";
pub const SLOT: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Slot-1";
pub const LIST: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-List-1";
pub const SEARCHSET_BUNDLE: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Searchset-Bundle-1";
pub const STRUCTURED_BUNDLE: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-StructuredRecord-Bundle-1";

pub const DELIVERY_CHANNEL: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-DeliveryChannel-2";
pub const BOOKING_ORGANISATION: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1";
pub const CANCELLATION_REASON: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1";
pub const REGISTRATION_DETAILS: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-RegistrationDetails-1";
pub const REGISTRATION_TYPE_SYSTEM: &str =
    "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-RegistrationType-1";
/// The extension holding an NHS number's verification status.
pub const NHS_NUMBER_VERIFICATION: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1";
/// The code system of that status (`01` verified, `02` not traced).
pub const NHS_NUMBER_VERIFICATION_SYSTEM: &str =
    "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1";
/// The extension holding a problem's significance (`major`, `minor`).
pub const PROBLEM_SIGNIFICANCE: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-ProblemSignificance-1";
