//! A minimal graphql-transport-ws client, for subscription tests.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue},
};

/// One subscription on its own connection.
#[derive(Debug)]
pub struct Subscription {
    socket: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

/// A graphql-transport-ws connection to `gateway_url`'s `/graphql/ws`, not initialised yet.
pub async fn connect(gateway_url: &str) -> WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!("{}/graphql/ws", gateway_url.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
    connect_async(request).await.expect("connect").0
}

/// Connects to `gateway_url`'s `/graphql/ws`, authenticates with `token`, and subscribes.
pub async fn subscribe(gateway_url: &str, token: Option<&str>, query: &str, variables: Value) -> Subscription {
    let mut socket = connect(gateway_url).await;
    let init = match token {
        Some(token) => json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
        None => json!({ "type": "connection_init", "payload": {} }),
    };
    socket.send(Message::Text(init.to_string().into())).await.expect("init");
    let ack = next_json(&mut socket, Duration::from_secs(5)).await.expect("connection_ack");
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } });
    socket.send(Message::Text(subscribe.to_string().into())).await.expect("subscribe");
    Subscription { socket }
}

impl Subscription {
    /// The next result for the subscription as `{ data, errors }` (a `next` message's payload,
    /// or an `error` message's errors), or `None` if nothing came within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        loop {
            let message = next_json(&mut self.socket, timeout).await?;
            match message["type"].as_str() {
                Some("next") => return Some(message["payload"].clone()),
                Some("error") => return Some(json!({ "errors": message["payload"] })),
                Some("ping") => {
                    let pong = json!({ "type": "pong" }).to_string();
                    self.socket.send(Message::Text(pong.into())).await.ok()?;
                }
                _ => {}
            }
        }
    }
}

/// The next text message on `socket` as JSON, or `None` if the connection closed or nothing
/// came within `timeout`.
pub async fn next_json(
    socket: &mut WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    timeout: Duration,
) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(timeout, socket.next()).await.ok()??.ok()?;
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).ok();
        }
    }
}
