//! A Kafka message's value, decoded as each event type: no panic, and whatever decodes
//! encodes to a message that decodes to the same event.
#![no_main]

use events::{
    Event,
    envelope::decode,
    payloads::{
        OrderCreated, OrderStatusChanged, ProductCreated, ProductDeleted, ProductStockUpdated, ProductUpdated,
        ReservationResult, UserCreated, UserDeleted, UserUpdated,
    },
};
use libfuzzer_sys::fuzz_target;

fn round_trip<E: Event>(bytes: &[u8]) {
    let Ok(envelope) = decode::<E>(bytes) else { return };
    let encoded = serde_json::to_vec(&envelope).expect("a decoded event encodes");
    let again = decode::<E>(&encoded).expect("an encoded event decodes");
    assert_eq!(serde_json::to_vec(&again).expect("encodes"), encoded, "decoding is stable");
}

fuzz_target!(|bytes: &[u8]| {
    round_trip::<UserCreated>(bytes);
    round_trip::<UserUpdated>(bytes);
    round_trip::<UserDeleted>(bytes);
    round_trip::<ProductCreated>(bytes);
    round_trip::<ProductUpdated>(bytes);
    round_trip::<ProductDeleted>(bytes);
    round_trip::<ProductStockUpdated>(bytes);
    round_trip::<OrderCreated>(bytes);
    round_trip::<OrderStatusChanged>(bytes);
    round_trip::<ReservationResult>(bytes);
});
