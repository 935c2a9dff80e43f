//! How a [`Message`] travels as an AMQP message: id, content type and topic in the properties and
//! headers, our headers as AMQP long strings, persistent delivery, and a few `x-` headers of our
//! own (attempt, dead-letter reason) that never show up in [`Message::headers`].

use std::collections::BTreeMap;

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString};

use super::topology::short;
use imgpipe_contract::bus::{BusError, Message};

/// The delivery attempt (1 on first delivery); a retry publishes a copy with the next number.
pub(super) const ATTEMPT: &str = "x-attempt";
/// The original topic: retries and dead letters travel with other routing keys.
const TOPIC: &str = "x-topic";
/// Why a message was dead-lettered.
pub(super) const DEAD_REASON: &str = "x-dead-reason";

/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

/// Headers that belong to the transport (ours, or added by the broker when it dead-letters).
fn is_transport_header(name: &str) -> bool {
    matches!(
        name,
        ATTEMPT | TOPIC | DEAD_REASON | "x-death" | "x-delivery-count"
    ) || name.starts_with("x-first-death-")
        || name.starts_with("x-last-death-")
}

pub(super) fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// Properties for publishing `message`, with `extra` transport headers.
pub(super) fn properties(
    message: &Message,
    extra: &[(&str, AMQPValue)],
) -> Result<BasicProperties, BusError> {
    let mut headers = FieldTable::default();
    for (name, value) in &message.headers {
        if !is_transport_header(name) {
            headers.insert(short(name)?, text(value));
        }
    }
    headers.insert(TOPIC.into(), text(&message.topic));
    for (name, value) in extra {
        headers.insert(short(name)?, value.clone());
    }
    Ok(BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_message_id(short(&message.id)?)
        .with_content_type(short(&message.content_type)?)
        .with_headers(headers))
}

/// A message as received, with the transport headers read out.
pub(super) struct Received {
    pub(super) message: Message,
    pub(super) attempt: u32,
    pub(super) dead_reason: String,
}

/// Reads a delivery. Messages from other publishers (no `x-topic`, no id) still arrive: the
/// routing key stands in for the topic and a fresh id is made up.
pub(super) fn received(
    routing_key: &str,
    properties: &BasicProperties,
    payload: Vec<u8>,
) -> Received {
    let empty = FieldTable::default();
    let table = properties.headers().as_ref().unwrap_or(&empty);
    let mut headers = BTreeMap::new();
    for (name, value) in table {
        if let (false, Some(value)) = (is_transport_header(name.as_str()), as_text(value)) {
            headers.insert(name.to_string(), value);
        }
    }
    let lookup = |name: &str| table.inner().get(name);
    let topic = lookup(TOPIC)
        .and_then(as_text)
        .unwrap_or_else(|| routing_key.to_owned());
    // A quorum queue counts the deliveries that came back unsettled (a consumer that died or
    // lost its channel mid-handling): each was an attempt that `x-attempt` never saw.
    let returned = lookup("x-delivery-count").and_then(as_number).unwrap_or(0);
    let attempt = lookup(ATTEMPT)
        .and_then(as_number)
        .unwrap_or(1)
        .max(1)
        .saturating_add(returned);
    let dead_reason = lookup(DEAD_REASON)
        .and_then(as_text)
        .or_else(|| {
            lookup("x-first-death-reason")
                .and_then(as_text)
                .map(|why| format!("dead-lettered by the broker ({why})"))
        })
        .unwrap_or_default();
    let message = Message {
        id: properties
            .message_id()
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        topic,
        content_type: properties
            .content_type()
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "application/octet-stream".to_owned()),
        headers,
        payload,
    };
    Received {
        message,
        attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
        dead_reason,
    }
}

fn as_text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

fn as_number(value: &AMQPValue) -> Option<u64> {
    let n: i128 = match value {
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        other => as_text(other)?.trim().parse().ok()?,
    };
    u64::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_the_message_and_hides_transport_headers() {
        let message = Message::json("image.resized", &serde_json::json!({"n": 1}))
            .map(|m| m.with_header("traceparent", "00-abc-def-01"))
            .unwrap_or_else(|e| panic!("{e}"));
        let props = properties(&message, &[(ATTEMPT, AMQPValue::LongInt(3))])
            .unwrap_or_else(|e| panic!("{e}"));
        let got = received("elsewhere", &props, message.payload.clone());
        assert_eq!(got.message, message);
        assert_eq!(got.attempt, 3);
        assert_eq!(*props.delivery_mode(), Some(PERSISTENT));
    }

    #[test]
    fn foreign_messages_use_the_routing_key() {
        let got = received("storage.created", &BasicProperties::default(), Vec::new());
        assert_eq!(got.message.topic, "storage.created");
        assert_eq!(got.attempt, 1);
        assert!(!got.message.id.is_empty());
    }
}
