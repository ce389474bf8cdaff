//! A `CreateOrder` request's protobuf bytes, as order-service checks and prices them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| order_service::fuzzing::create_order_request(bytes));
