//! `Ssp-InteractionID` must fit the request's method and path (and a search's query): a
//! provider refuses `read:patient-1` sent as `POST /Patient/$gpc.getstructuredrecord`. Several
//! interactions share a shape (the three metadata reads, amend and cancel appointment); the
//! declared one only has to fit.

use http::Method;

use super::findings::{Findings, Rule};
use crate::config::interactions::{Interaction, Interactions};

/// `rest` is the FHIR path and query below the service root, as check 8 cut it.
pub fn check(
    declared: &Interaction,
    catalogue: &Interactions,
    method: &Method,
    rest: &str,
    findings: &mut Findings,
) {
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if declared.fits(method, path, query) {
        return;
    }
    let shown = if path.is_empty() { "/" } else { path };
    let expected = if declared.query_required.is_empty() {
        String::new()
    } else {
        format!("?{}=..", declared.query_required.join("=..&"))
    };
    let looks_like = match catalogue.matching(method, path, query).as_slice() {
        [] => "it matches no GP Connect interaction".to_owned(),
        found => format!(
            "it looks like {}",
            found
                .iter()
                .map(|i| format!("{} ({})", i.id, i.name))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    };
    findings.fail(
        Rule::Interaction,
        format!(
            "Ssp-InteractionID {} ({}) is {} {}{expected}, but the request is {method} {shown}; {looks_like}",
            declared.id,
            declared.name,
            declared.method,
            declared.path.as_str(),
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::interactions::EMBEDDED;

    fn catalogue() -> Interactions {
        Interactions::parse("interactions.toml", EMBEDDED).unwrap()
    }

    fn by_path<'c>(c: &'c Interactions, method: Method, path: &str) -> &'c Interaction {
        c.iter()
            .find(|i| i.method == method && i.path.as_str() == path)
            .unwrap()
    }

    fn run(declared: &Interaction, c: &Interactions, method: Method, rest: &str) -> Vec<String> {
        let mut f = Findings::default();
        check(declared, c, &method, rest, &mut f);
        f.violations.into_iter().map(|v| v.message).collect()
    }

    #[test]
    fn a_fitting_request_passes_even_when_the_shape_is_shared() {
        let c = catalogue();
        for i in c.iter().filter(|i| i.path.as_str() == "/metadata") {
            assert!(run(i, &c, Method::GET, "/metadata").is_empty(), "{}", i.id);
        }
        for i in c.iter().filter(|i| i.method == Method::PUT) {
            assert!(
                run(i, &c, Method::PUT, "/Appointment/5").is_empty(),
                "{}",
                i.id
            );
        }
        let read = by_path(&c, Method::GET, "/Patient/{id}");
        assert!(run(read, &c, Method::GET, "/Patient/2?_format=json").is_empty());
    }

    #[test]
    fn a_misfit_names_what_the_request_looks_like() {
        let c = catalogue();
        let read = by_path(&c, Method::GET, "/Patient/{id}");
        let messages = run(read, &c, Method::POST, "/Patient/$gpc.getstructuredrecord");
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert!(
            m.contains(&format!(
                "{} (Read a patient) is GET /Patient/{{id}}",
                read.id
            )),
            "{m}"
        );
        assert!(
            m.contains("but the request is POST /Patient/$gpc.getstructuredrecord; it looks like "),
            "{m}"
        );
        assert!(m.contains("gpc.getstructuredrecord-1"), "{m}");
    }

    #[test]
    fn a_search_without_its_parameters_or_an_unknown_path_is_a_misfit() {
        let c = catalogue();
        let search = c
            .iter()
            .find(|i| {
                i.method == Method::GET
                    && i.path.as_str() == "/Patient"
                    && i.query_required == ["identifier"]
            })
            .unwrap();
        let m = &run(search, &c, Method::GET, "/Patient")[0];
        assert!(m.contains("is GET /Patient?identifier=.., but the request is GET /Patient; it matches no GP Connect interaction"), "{m}");
        let m = &run(search, &c, Method::GET, "")[0];
        assert!(m.contains("the request is GET /;"), "{m}");
    }
}
