//! One way to spell a routes.toml in the tests: a builder that writes the tables, so a test
//! names only the consumers, providers and endpoints it varies.

use std::fmt::Write;

/// A routes.toml, table by table.
#[derive(Debug, Default, Clone)]
pub struct RoutesToml(String);

/// A TOML array of strings.
fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

impl RoutesToml {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// A `[[consumer]]` that may initiate `interactions` towards `may_send_to`.
    pub fn consumer(
        mut self,
        name: &str,
        asid: &str,
        ods_code: &str,
        interactions: &[&str],
        may_send_to: &[&str],
    ) -> Self {
        let _ = write!(
            self.0,
            "\n[[consumer]]\nname = {name:?}\nasid = {asid:?}\nods_code = {ods_code:?}\ninteractions = {}\nmay_send_to = {}\n",
            list(interactions),
            list(may_send_to)
        );
        self
    }

    /// A `[[provider]]`; its endpoints follow with `endpoint`.
    pub fn provider(mut self, name: &str, ods_code: &str, asid: &str, party_key: &str) -> Self {
        let _ = write!(
            self.0,
            "\n[[provider]]\nname = {name:?}\nods_code = {ods_code:?}\nasid = {asid:?}\nparty_key = {party_key:?}\n"
        );
        self
    }

    /// A `[[provider.endpoint]]` of the last provider.
    pub fn endpoint(mut self, service_root: &str, backend: &str, interactions: &[&str]) -> Self {
        let _ = write!(
            self.0,
            "\n  [[provider.endpoint]]\n  service_root = {service_root:?}\n  backend = {backend:?}\n  interactions = {}\n",
            list(interactions)
        );
        self
    }

    /// Lines added to the last table as written (`key = value`, or a sub-table).
    pub fn with(mut self, lines: &str) -> Self {
        for line in lines.lines() {
            let _ = writeln!(self.0, "  {}", line.trim());
        }
        self
    }

    /// The file's text.
    pub fn build(self) -> String {
        self.0
    }
}
