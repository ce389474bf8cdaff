//! What the gateway reads from a client before a resolver runs: a `POST /graphql` body (first
//! byte even) or a `GET /graphql` query string (odd), then the operation's shape.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Some((&selector, rest)) = bytes.split_first() else { return };
    if selector % 2 == 0 {
        api_gateway::fuzzing::graphql_post(rest);
    } else {
        api_gateway::fuzzing::graphql_get(rest);
    }
});
