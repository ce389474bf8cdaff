//! Tells when an order reaches a final status, through the gateway's `orderStatusChanged`
//! subscription: one WebSocket (graphql-transport-ws) carries many subscriptions at once. The
//! subscription's first event is the order's status when it began, so an order that settled
//! before it is told at once.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::{SinkExt as _, StreamExt as _};
use proto::order::OrderStatus;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue},
};

use crate::RequestError;

const SUBSCRIPTION: &str = "subscription($id: ID!) { orderStatusChanged(orderId: $id) { to reason } }";

type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<Result<OrderStatus, RequestError>>>>>;

/// One WebSocket with any number of order subscriptions on it.
#[derive(Debug)]
pub struct OrderWatcher {
    outgoing: mpsc::UnboundedSender<Message>,
    waiting: Waiting,
    next_id: AtomicU64,
}

/// A subscription waiting for its order to settle.
#[derive(Debug)]
pub struct Watch {
    pub id: String,
    settled: oneshot::Receiver<Result<OrderStatus, RequestError>>,
}

impl OrderWatcher {
    /// Connects to the gateway at `base_url` as the holder of `token`.
    pub async fn connect(base_url: &str, token: &str) -> anyhow::Result<Self> {
        let url = format!("{}/graphql/ws", base_url.trim_end_matches('/').replacen("http", "ws", 1));
        let mut request = url.into_client_request()?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
        let (socket, _) = connect_async(request).await?;
        let (mut sink, mut stream) = socket.split();
        let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
        sink.send(Message::Text(init.to_string().into())).await?;
        let ack = tokio::time::timeout(Duration::from_secs(10), stream.next()).await?;
        match ack {
            Some(Ok(Message::Text(text))) if text.contains("connection_ack") => {}
            other => anyhow::bail!("the gateway did not acknowledge the subscription connection: {other:?}"),
        }

        let (outgoing, mut to_send) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(message) = to_send.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
        });
        let waiting: Waiting = Arc::default();
        let (reader_waiting, reader_outgoing) = (Arc::clone(&waiting), outgoing.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message
                    && let Ok(message) = serde_json::from_str::<Value>(&text)
                {
                    handle(&message, &reader_waiting, &reader_outgoing);
                }
            }
            // The connection is gone: everyone still waiting hears it now, not at their timeout.
            for (_, waiter) in reader_waiting.lock().expect("waiting lock").drain() {
                let _ = waiter.send(Err(RequestError::Transport("subscription connection closed".to_owned())));
            }
        });
        Ok(Self { outgoing, waiting, next_id: AtomicU64::new(1) })
    }

    /// Subscribes to `order_id`'s status changes.
    pub fn watch(&self, order_id: &str) -> Result<Watch, RequestError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let (settle, settled) = oneshot::channel();
        self.waiting.lock().expect("waiting lock").insert(id.clone(), settle);
        let subscribe = json!({
            "id": id, "type": "subscribe",
            "payload": { "query": SUBSCRIPTION, "variables": { "id": order_id } },
        });
        self.outgoing
            .send(Message::Text(subscribe.to_string().into()))
            .map_err(|_| RequestError::Transport("subscription connection closed".to_owned()))?;
        Ok(Watch { id, settled })
    }

    /// Ends a subscription that is no longer needed.
    pub fn stop(&self, watch: Watch) {
        if self.waiting.lock().expect("waiting lock").remove(&watch.id).is_some() {
            let _ = self.outgoing.send(complete(&watch.id));
        }
    }

    /// Waits up to `timeout` for the order to settle, and returns its final status.
    pub async fn settled(&self, watch: Watch, timeout: Duration) -> Result<OrderStatus, RequestError> {
        let id = watch.id.clone();
        match tokio::time::timeout(timeout, watch.settled).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RequestError::Transport("subscription connection closed".to_owned())),
            Err(_) => {
                self.waiting.lock().expect("waiting lock").remove(&id);
                let _ = self.outgoing.send(complete(&id));
                Err(RequestError::Unexpected(format!("order not settled within {} s", timeout.as_secs())))
            }
        }
    }
}

fn complete(id: &str) -> Message {
    Message::Text(json!({ "id": id, "type": "complete" }).to_string().into())
}

/// Routes one message from the gateway to the subscription it belongs to.
fn handle(message: &Value, waiting: &Waiting, outgoing: &mpsc::UnboundedSender<Message>) {
    let id = message["id"].as_str().unwrap_or_default();
    let settled = match message["type"].as_str() {
        Some("ping") => {
            let _ = outgoing.send(Message::Text(json!({ "type": "pong" }).to_string().into()));
            return;
        }
        Some("next") => match crate::graphql::data_of(message["payload"].clone()) {
            Ok(data) => match data["orderStatusChanged"]["to"].as_str().map(str::parse::<OrderStatus>) {
                Some(Ok(status)) if status.is_settled() => Ok(status),
                Some(Ok(_)) => return,
                Some(Err(unknown)) => Err(RequestError::Unexpected(format!("orderStatusChanged.to {unknown}"))),
                None => Err(RequestError::Unexpected(format!("no orderStatusChanged.to in {data}"))),
            },
            Err(error) => Err(error),
        },
        Some("error") => Err(RequestError::Unexpected(format!("subscription refused: {}", message["payload"]))),
        Some("complete") => Err(RequestError::Unexpected("subscription ended before the order settled".to_owned())),
        _ => return,
    };
    if let Some(waiter) = waiting.lock().expect("waiting lock").remove(id) {
        if settled.is_ok() {
            let _ = outgoing.send(complete(id));
        }
        let _ = waiter.send(settled);
    }
}
