//! NHS numbers: ten digits whose last is a Modulus 11 check digit over the first nine.

use std::fmt;

/// The identifier system of an NHS number.
pub const SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// A structurally valid NHS number (format and check digit both pass).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NhsNumber(String);

/// Why a value is not an NHS number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    #[error("`{0}` is not an NHS number: it must be exactly ten digits")]
    Format(String),
    #[error("`{0}` is not an NHS number: its check digit (Modulus 11) is wrong")]
    CheckDigit(String),
}

impl NhsNumber {
    /// Accepts ten ASCII digits whose Modulus 11 check digit is right.
    pub fn parse(text: &str) -> Result<Self, NhsNumberError> {
        let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
        if text.len() != 10 || digits.len() != 10 {
            return Err(NhsNumberError::Format(text.to_owned()));
        }
        let weighted: u32 = digits[..9]
            .iter()
            .zip((2..=10).rev())
            .map(|(d, w)| d * w)
            .sum();
        // A remainder of 0 gives check digit 0 (11 -> 0); a computed 10 means no number is valid.
        let check = (11 - weighted % 11) % 11;
        if check == digits[9] {
            Ok(Self(text.to_owned()))
        } else {
            Err(NhsNumberError::CheckDigit(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_example_numbers_are_valid() {
        for n in ["9476719931", "9690937278", "9000000009"] {
            assert!(NhsNumber::parse(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn a_wrong_check_digit_or_shape_is_refused() {
        assert_eq!(
            NhsNumber::parse("9476719932"),
            Err(NhsNumberError::CheckDigit("9476719932".into()))
        );
        for bad in [
            "",
            "947671993",
            "94767199311",
            "947671993x",
            "+476719931",
            "９476719931",
        ] {
            assert!(
                matches!(NhsNumber::parse(bad), Err(NhsNumberError::Format(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_check_digit_of_ten_is_never_valid() {
        // The ninth digit has weight 2: 6 * 2 = 12, 12 % 11 = 1, 11 - 1 = 10, which no digit is.
        for last in 0..10 {
            assert!(NhsNumber::parse(&format!("000000006{last}")).is_err());
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,12}") {
            let _ = NhsNumber::parse(&s);
        }

        #[test]
        fn at_most_one_check_digit_fits_a_prefix(prefix in "[0-9]{9}") {
            let fits = (0..10).filter(|d| NhsNumber::parse(&format!("{prefix}{d}")).is_ok()).count();
            prop_assert!(fits <= 1);
        }
    }
}
