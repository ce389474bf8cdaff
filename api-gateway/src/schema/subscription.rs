//! Subscriptions, over WebSocket at `/graphql/ws`: order status and stock changes as the
//! services publish them. Each first sends the current state (read after listening began, so
//! nothing between the two is missed): a client that subscribes just after its order settled
//! learns it at once, and the first event tells any client that the subscription is live.

use async_graphql::{Context, ID, Result, SimpleObject, Subscription};
use events::payloads::{OrderStatusChanged, ProductStockUpdated};
use futures::{Stream, StreamExt as _};
use proto::order::GetOrderRequest;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio_stream::wrappers::{BroadcastStream, errors::BroadcastStreamRecvError};

use super::query::backends;
use crate::{
    auth,
    backends::call_optional,
    errors,
    feed::EventFeed,
    subscription_slots::{ClientSlots, Slot},
};

/// The subscription root.
#[derive(Debug, Default)]
pub struct SubscriptionRoot;

/// An order moved in its status machine. The first event of a subscription is the order's
/// status when it began, with `from` equal to `to`.
#[derive(Debug, Clone, SimpleObject)]
pub struct OrderStatusEvent {
    pub order_id: ID,
    pub user_id: ID,
    pub from: String,
    pub to: String,
    /// Why, for a cancellation.
    pub reason: Option<String>,
}

/// A product's stock changed. The first event of a subscription is the stock when it began,
/// with the reason `current`.
#[derive(Debug, Clone, SimpleObject)]
pub struct StockEvent {
    pub product_id: ID,
    pub stock: i32,
    /// Positive when stock came back, negative when it was taken; null when an admin set it.
    pub delta: Option<i32>,
    /// `reserved`, `released` or `set`; `current` for the first event.
    pub reason: String,
    pub order_id: Option<ID>,
}

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Status changes of one order: your own, or any for an admin.
    async fn order_status_changed(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
    ) -> Result<impl Stream<Item = Result<OrderStatusEvent>>> {
        let viewer = auth::viewer(ctx)?;
        let feed = feed(ctx)?;
        let slot = slot(ctx)?;
        // Listen before checking, so nothing that happens during the check is missed.
        let events = feed.follow_order(&order_id.0).await.map_err(unavailable)?;
        let request = GetOrderRequest { id: order_id.0.clone() };
        let mut orders = backends(ctx).orders.clone();
        let order = call_optional("order-service", "GetOrder", orders.get_order(request)).await?;
        let order = order.ok_or_else(|| errors::with_code("order not found", errors::code::NOT_FOUND))?;
        if !viewer.is_admin() && order.user_id != viewer.user_id {
            return Err(errors::forbidden("you may only follow your own orders"));
        }
        let current = OrderStatusEvent {
            order_id: ID(order.id),
            user_id: ID(order.user_id),
            from: order.status.clone(),
            to: order.status,
            reason: Some(order.status_reason).filter(|reason| !reason.is_empty()),
        };
        let wanted = order_id.0;
        Ok(current_then(current, events, slot, move |event: &OrderStatusChanged| {
            (event.order_id == wanted).then(|| OrderStatusEvent {
                order_id: ID(event.order_id.clone()),
                user_id: ID(event.user_id.clone()),
                from: event.from.to_string(),
                to: event.to.to_string(),
                reason: event.reason.clone(),
            })
        }))
    }

    /// Stock changes of one product. Public, like the catalog.
    async fn product_stock_changed(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
    ) -> Result<impl Stream<Item = Result<StockEvent>>> {
        let feed = feed(ctx)?;
        let slot = slot(ctx)?;
        let events = feed.follow_stock(&product_id.0).await.map_err(unavailable)?;
        // From product-service, not the gateway's cache: the cache may not have seen the
        // changes published before listening began.
        let product = super::query::get_product(ctx, product_id.0.clone()).await?;
        let product = product.ok_or_else(|| errors::with_code("product not found", errors::code::NOT_FOUND))?;
        let current = StockEvent {
            product_id: product.id,
            stock: product.stock,
            delta: None,
            reason: CURRENT.to_owned(),
            order_id: None,
        };
        let wanted = product_id.0;
        Ok(current_then(current, events, slot, move |event: &ProductStockUpdated| {
            (event.product_id == wanted).then(|| StockEvent {
                product_id: ID(event.product_id.clone()),
                stock: i32::try_from(event.stock).unwrap_or(i32::MAX),
                delta: event.delta.map(|delta| i32::try_from(delta).unwrap_or(i32::MAX)),
                reason: event.reason.clone(),
                order_id: event.order_id.clone().map(ID),
            })
        }))
    }
}

/// The reason of a stock subscription's first event.
const CURRENT: &str = "current";

/// `current`, then what [`followed`] streams.
fn current_then<T: Send + Sync + 'static, E: Send + 'static>(
    current: E,
    receiver: broadcast::Receiver<Arc<T>>,
    slot: Option<Slot>,
    pick: impl Fn(&T) -> Option<E> + Send + 'static,
) -> impl Stream<Item = Result<E>> {
    futures::stream::once(futures::future::ready(Ok(current))).chain(followed(receiver, slot, pick))
}

/// The events of `receiver` that `pick` keeps, as a subscription streams them. A subscription
/// that fell so far behind that its channel dropped events gets an error saying so, and ends:
/// its client then reads the current state and subscribes again, instead of missing changes
/// without knowing. The subscription's `slot` is freed when the stream ends.
fn followed<T: Send + Sync + 'static, E: Send + 'static>(
    receiver: broadcast::Receiver<Arc<T>>,
    slot: Option<Slot>,
    pick: impl Fn(&T) -> Option<E> + Send + 'static,
) -> impl Stream<Item = Result<E>> {
    // The slot lives in the stream's state, so it is dropped (freed) with the stream.
    BroadcastStream::new(receiver)
        .scan((false, slot), move |(lagged, _slot), event| {
            let item = match event {
                _ if *lagged => None,
                Ok(event) => Some(Ok(pick(&event))),
                Err(BroadcastStreamRecvError::Lagged(missed)) => {
                    *lagged = true;
                    let message = format!(
                        "this subscription fell behind and missed {missed} events; read the current state and subscribe again"
                    );
                    Some(Err(errors::with_code(&message, errors::code::UNAVAILABLE)))
                }
            };
            futures::future::ready(item)
        })
        .filter_map(|item| futures::future::ready(item.transpose()))
}

/// A slot for one more subscription of the connection's client, or an error naming the cap
/// that is full. Without a connection's slots (the schema run by a unit test) there is no cap.
fn slot(ctx: &Context<'_>) -> Result<Option<Slot>> {
    let Some(slots) = ctx.data_opt::<ClientSlots>() else { return Ok(None) };
    slots.take().map(Some).map_err(|full| errors::with_code(&full.to_string(), errors::code::TOO_MANY_SUBSCRIPTIONS))
}

fn unavailable(error: crate::feed::FeedUnavailable) -> async_graphql::Error {
    errors::with_code(&error.to_string(), errors::code::UNAVAILABLE)
}

fn feed<'a>(ctx: &Context<'a>) -> Result<&'a EventFeed> {
    let feed = ctx.data_unchecked::<EventFeed>();
    if feed.enabled {
        Ok(feed)
    } else {
        Err(errors::with_code("subscriptions need a broker (KAFKA_BROKERS)", errors::code::UNAVAILABLE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subscription_that_fell_behind_is_told_and_ends() {
        let (sender, receiver) = broadcast::channel(2);
        let stream = followed(receiver, None, |event: &i32| (*event % 2 == 0).then_some(*event));
        for event in 0..5 {
            sender.send(Arc::new(event)).expect("send");
        }
        let items: Vec<_> = stream.collect().await;
        assert_eq!(items.len(), 1, "the error, then nothing: {items:?}");
        let error = items[0].as_ref().expect_err("an error");
        assert!(error.message.contains("missed 3 events"), "{}", error.message);
    }

    #[tokio::test]
    async fn a_subscription_that_keeps_up_gets_what_it_follows() {
        let (sender, receiver) = broadcast::channel(8);
        let stream = followed(receiver, None, |event: &i32| (*event % 2 == 0).then_some(*event));
        for event in 0..5 {
            sender.send(Arc::new(event)).expect("send");
        }
        drop(sender);
        let items: Vec<i32> = stream.map(|item| item.expect("no error")).collect().await;
        assert_eq!(items, [0, 2, 4]);
    }
}
