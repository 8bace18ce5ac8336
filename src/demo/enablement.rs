//! Practice-based enablement (GP Connect 1.2.7, #837): the demo provider refuses any request
//! whose practice has GP Connect, or the request's capability, switched off.

use crate::config::interactions::Capability;
use crate::config::rejection::{Placeholder, Rejection};
use crate::config::routes::DemoSwitches;
use crate::demo::errors;

/// `Ok` when the practice has both GP Connect and `capability` enabled; otherwise the
/// `ACCESS_DENIED` the specification requires, naming the switch that is off.
pub fn check(
    switches: &DemoSwitches,
    ods_code: &str,
    capability: Capability,
) -> Result<(), Rejection> {
    let off = if !switches.gpconnect {
        Some(("GP Connect", "gpconnect"))
    } else if !switches.capability(capability) {
        Some((capability.name(), capability.name()))
    } else {
        None
    };
    match off {
        None => Ok(()),
        Some((what, key)) => Err(Rejection::new(errors::ACCESS_DENIED).with(
            Placeholder::Diagnostics,
            format!(
                "The {what} capability is disabled for practice {ods_code}; enablement switches \
                 are off by default (GP Connect 1.2.7): set `{key} = true` under [provider.demo] \
                 in routes.toml to enable it"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_disabled_by_default() {
        let refused =
            check(&DemoSwitches::default(), "A20047", Capability::Foundations).unwrap_err();
        assert_eq!(refused.error, errors::ACCESS_DENIED);
        assert!(refused
            .to_string()
            .contains("GP Connect capability is disabled for practice A20047"));
    }

    #[test]
    fn the_global_switch_and_the_capability_switch_are_both_needed() {
        let only_global = DemoSwitches {
            gpconnect: true,
            ..Default::default()
        };
        let refused = check(&only_global, "A20047", Capability::Appointments).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("appointments capability is disabled"),
            "{refused}"
        );
        assert!(
            refused.to_string().contains("`appointments = true`"),
            "{refused}"
        );
        let both = DemoSwitches {
            gpconnect: true,
            appointments: true,
            ..Default::default()
        };
        assert!(check(&both, "A20047", Capability::Appointments).is_ok());
        let no_global = DemoSwitches {
            appointments: true,
            ..Default::default()
        };
        assert!(check(&no_global, "A20047", Capability::Appointments).is_err());
    }
    fn parse_routes(demo_table: &str) -> Result<crate::config::routes::Registry, String> {
        let routes = format!(
            r#"
[[provider]]
name = "P"
ods_code = "A20047"
asid = "918999198738"
party_key = "A20047-821870"
{demo_table}
  [[provider.endpoint]]
  service_root = "https://p.example.nhs.uk/A20047/STU3/1/gpconnect"
  backend = "builtin:demo"
  interactions = ["foundations"]
"#
        );
        let interactions = std::sync::Arc::new(
            crate::config::interactions::Interactions::parse(
                "i",
                crate::config::interactions::EMBEDDED,
            )
            .unwrap(),
        );
        let catalog = crate::config::errors::ErrorCatalog::embedded().unwrap();
        crate::config::routes::Registry::parse("routes.toml", &routes, &interactions, &catalog)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn routes_toml_switches_default_off_and_refuse_unknown_keys() {
        let asid = crate::config::routes::Asid::parse("918999198738").unwrap();
        let registry = parse_routes("").unwrap();
        assert_eq!(
            registry.provider(&asid).unwrap().demo,
            DemoSwitches::default()
        );
        let registry =
            parse_routes("  [provider.demo]\n  gpconnect = true\n  structured = true\n").unwrap();
        let demo = registry.provider(&asid).unwrap().demo;
        assert!(demo.gpconnect && demo.structured && !demo.foundations);
        let error = parse_routes("  [provider.demo]\n  apointments = true\n").unwrap_err();
        assert!(error.contains("apointments"), "{error}");
    }
}
