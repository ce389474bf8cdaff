//! The wire format: a JSON envelope around the typed payload, plus headers.

use serde::{Deserialize, Serialize};

use crate::Event;

/// Header carrying the event type, so tools can filter without parsing the body.
pub const EVENT_TYPE_HEADER: &str = "event-type";
/// W3C trace context, so a trace can follow an event from producer to consumer.
pub const TRACEPARENT_HEADER: &str = service_runtime::trace_context::TRACEPARENT;

/// What is published: metadata and the payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<P> {
    /// Unique per event; consumers use it to process each event once.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event happened (RFC 3339, UTC).
    pub time: String,
    pub version: u32,
    pub payload: P,
}

impl<E: Event> Envelope<E> {
    /// Wraps `payload` with a fresh id and the current time.
    pub fn new(payload: E) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            event_type: E::TYPE.to_owned(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            version: E::VERSION,
            payload,
        }
    }
}

/// A fresh W3C `traceparent` for an event that starts a trace.
pub fn new_traceparent() -> String {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    format!("00-{trace}-{span}-01")
}

/// Why an incoming message was refused before any handler saw it.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is not a valid event envelope: {0}")]
    Malformed(String),
    #[error("unexpected event type {found:?} (expected {expected:?})")]
    WrongType { found: String, expected: &'static str },
    #[error("unknown schema version {found} of {event_type} (this service reads version {known})")]
    UnknownVersion { event_type: String, found: u32, known: u32 },
}

/// Decodes and checks an envelope for event type `E`.
pub fn decode<E: Event>(bytes: &[u8]) -> Result<Envelope<E>, DecodeError> {
    let raw: Envelope<serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|error| DecodeError::Malformed(error.to_string()))?;
    if raw.event_type != E::TYPE {
        return Err(DecodeError::WrongType { found: raw.event_type, expected: E::TYPE });
    }
    if raw.version != E::VERSION {
        return Err(DecodeError::UnknownVersion { event_type: raw.event_type, found: raw.version, known: E::VERSION });
    }
    let payload = serde_json::from_value(raw.payload).map_err(|error| DecodeError::Malformed(error.to_string()))?;
    Ok(Envelope { id: raw.id, event_type: raw.event_type, time: raw.time, version: raw.version, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payloads::ReservationResult;

    fn result() -> ReservationResult {
        ReservationResult { order_id: "o-1".into(), reserved: true, reason: None }
    }

    #[test]
    fn round_trips_and_checks_type_and_version() {
        let envelope = Envelope::new(result());
        let bytes = serde_json::to_vec(&envelope).expect("encode");
        assert_eq!(decode::<ReservationResult>(&bytes).expect("decode"), envelope);

        let mut future = serde_json::to_value(&envelope).expect("value");
        future["version"] = 2.into();
        let error = decode::<ReservationResult>(future.to_string().as_bytes()).expect_err("v2");
        assert!(matches!(error, DecodeError::UnknownVersion { found: 2, .. }), "{error}");
        assert!(matches!(decode::<ReservationResult>(b"not json"), Err(DecodeError::Malformed(_))));
        let mut other = serde_json::to_value(&envelope).expect("value");
        other["type"] = "OrderCreated".into();
        assert!(matches!(
            decode::<ReservationResult>(other.to_string().as_bytes()),
            Err(DecodeError::WrongType { .. })
        ));
    }

    #[test]
    fn traceparents_are_well_formed() {
        let parent = new_traceparent();
        let parts: Vec<_> = parent.split('-').collect();
        assert_eq!(parts.iter().map(|part| part.len()).collect::<Vec<_>>(), vec![2, 32, 16, 2]);
    }
}
