//! Finding a rule's NHS number in a request: standing alone in the target URL, or as the
//! `patientNHSNumber` of a Parameters body, which is read and put back whole.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, StreamExt};
use http::Request;
use http_body::Body as _;
use http_body_util::{BodyExt, BodyStream, Empty, StreamBody};
use serde::Deserialize;

use crate::wire::body::RequestBody;

/// How much of a request body is read looking for an NHS number; beyond it the body is
/// forwarded untouched and not searched. A Parameters body naming a patient is a few KB.
const PEEK_LIMIT: usize = 64 * 1024;

/// How long a request body is waited for looking for an NHS number: a consumer that sends its
/// body slowly (or never) gets it forwarded as it comes, unsearched, instead of held here.
const PEEK_TIME: Duration = Duration::from_secs(5);

/// The `$gpc.getstructuredrecord` (and migrate) parameter that carries the NHS number.
const NHS_NUMBER_PARAMETER: &str = "patientNHSNumber";

/// Whether `number` stands alone (not inside a longer run of digits) in the decoded URL.
pub(super) fn names_nhs_number(url: &str, number: &str) -> bool {
    percent_encoding::percent_decode_str(url)
        .decode_utf8_lossy()
        .split(|c: char| !c.is_ascii_digit())
        .any(|run| run == number)
}

/// The NHS number a Parameters body names, reading the body and putting it back.
pub(super) async fn nhs_number_in_body(request: &mut Request<RequestBody>) -> Option<String> {
    if request.body().is_end_stream() {
        return None;
    }
    let whole = std::mem::replace(
        request.body_mut(),
        Empty::new().map_err(|never| match never {}).boxed_unsync(),
    );
    let (seen, replay) = peek(whole, PEEK_LIMIT, PEEK_TIME).await;
    *request.body_mut() = replay;
    nhs_number_in_parameters(&seen)
}

/// Reads up to `limit` bytes of a body for at most `time`; returns them and a body that
/// replays everything (what was read, then the rest, including an error if reading failed).
async fn peek(mut whole: RequestBody, limit: usize, time: Duration) -> (Bytes, RequestBody) {
    let deadline = tokio::time::Instant::now() + time;
    let mut seen = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = None;
    loop {
        let Ok(frame) = tokio::time::timeout_at(deadline, whole.frame()).await else {
            // Too slow to wait for: what came so far is searched, the rest follows unread.
            rest = Some(whole);
            break;
        };
        match frame {
            None => break,
            Some(Err(e)) => {
                frames.push(Err(e));
                break;
            }
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    seen.extend_from_slice(data);
                }
                frames.push(Ok(frame));
                if seen.len() >= limit {
                    rest = Some(whole);
                    break;
                }
            }
        }
    }
    let replay = stream::iter(frames).chain(stream::iter(rest.map(BodyStream::new)).flatten());
    // Boxed as is: the frames already carry the body's own error type.
    (seen.freeze(), StreamBody::new(replay).boxed_unsync())
}

/// The `patientNHSNumber` of a FHIR Parameters resource, in JSON or XML.
fn nhs_number_in_parameters(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Parameters {
        resource_type: String,
        #[serde(default)]
        parameter: Vec<Parameter>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Parameter {
        name: String,
        value_identifier: Option<Identifier>,
    }
    #[derive(Deserialize)]
    struct Identifier {
        value: Option<String>,
    }
    let text = std::str::from_utf8(body).ok()?.trim_start();
    if text.starts_with('<') {
        // XML: `<name value="patientNHSNumber"/><valueIdentifier>..<value value="N"/>`; the
        // first `value` element after the parameter's name is its identifier's value.
        let after = &text[text.find(NHS_NUMBER_PARAMETER)? + NHS_NUMBER_PARAMETER.len()..];
        let value = &after[after.find("<value value=\"")? + "<value value=\"".len()..];
        return Some(value[..value.find('"')?].to_owned());
    }
    let parameters: Parameters = serde_json::from_str(text).ok()?;
    if parameters.resource_type != "Parameters" {
        return None;
    }
    parameters
        .parameter
        .into_iter()
        .find(|p| p.name == NHS_NUMBER_PARAMETER)?
        .value_identifier?
        .value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhs_numbers_are_found_alone_in_urls_and_in_parameters_bodies() {
        let url = "https://p/A1/STU3/1/gpconnect/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937278";
        assert!(names_nhs_number(url, "9690937278"));
        assert!(!names_nhs_number(url, "969093727"));
        assert!(!names_nhs_number(
            "https://p/Patient/96909372781",
            "9690937278"
        ));
        let json = br#"{"resourceType":"Parameters","parameter":[{"name":"includeAllergies"},{"name":"patientNHSNumber","valueIdentifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9690937278"}}]}"#;
        assert_eq!(
            nhs_number_in_parameters(json).as_deref(),
            Some("9690937278")
        );
        let xml = br#"<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="patientNHSNumber"/><valueIdentifier><system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="9690937278"/></valueIdentifier></parameter></Parameters>"#;
        assert_eq!(nhs_number_in_parameters(xml).as_deref(), Some("9690937278"));
        assert_eq!(
            nhs_number_in_parameters(br#"{"resourceType":"Patient"}"#),
            None
        );
    }

    #[tokio::test]
    async fn a_peeked_body_is_replayed_whole() {
        let frames = ["0123", "4567", "89"].map(|d| Ok(http_body::Frame::data(Bytes::from(d))));
        let whole: RequestBody = StreamBody::new(stream::iter(frames)).boxed_unsync();
        let (seen, replay) = peek(whole, 4, Duration::from_secs(5)).await;
        assert_eq!(&seen[..], b"0123");
        let replayed = replay.collect().await.unwrap().to_bytes();
        assert_eq!(&replayed[..], b"0123456789");
    }

    #[tokio::test]
    async fn a_body_too_slow_to_wait_for_is_replayed_unsearched() {
        let first = stream::iter([Ok(http_body::Frame::data(Bytes::from("0123")))]);
        let later = stream::once(async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(http_body::Frame::data(Bytes::from("4567")))
        });
        let whole: RequestBody = StreamBody::new(first.chain(later)).boxed_unsync();
        let (seen, replay) = peek(whole, 1024, Duration::from_millis(100)).await;
        assert_eq!(&seen[..], b"0123");
        // The rest is still there to forward (here: its first frame, without waiting 60 s).
        let mut replay = replay;
        let again = replay.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&again[..], b"0123");
    }
}
