//! Subscriptions, over WebSocket at `/graphql/ws`: order status and stock changes as the
//! services publish them.

use async_graphql::{Context, ID, Result, SimpleObject, Subscription};
use futures::{Stream, StreamExt as _};
use proto::order::GetOrderRequest;
use tokio_stream::wrappers::BroadcastStream;

use super::query::backends;
use crate::{auth, backends::call_optional, errors, feed::EventFeed};

/// The subscription root.
#[derive(Debug, Default)]
pub struct SubscriptionRoot;

/// An order moved in its status machine.
#[derive(Debug, Clone, SimpleObject)]
pub struct OrderStatusEvent {
    pub order_id: ID,
    pub user_id: ID,
    pub from: String,
    pub to: String,
    /// Why, for a cancellation.
    pub reason: Option<String>,
}

/// A product's stock changed.
#[derive(Debug, Clone, SimpleObject)]
pub struct StockEvent {
    pub product_id: ID,
    pub stock: i32,
    /// Positive when stock came back, negative when it was taken; null when an admin set it.
    pub delta: Option<i32>,
    /// `reserved`, `released` or `set`.
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
    ) -> Result<impl Stream<Item = OrderStatusEvent>> {
        let viewer = auth::viewer(ctx)?;
        let feed = feed(ctx)?;
        // Listen before checking, so nothing that happens during the check is missed.
        let events = BroadcastStream::new(feed.follow_order(&order_id.0).await.map_err(unavailable)?);
        let request = GetOrderRequest { id: order_id.0.clone() };
        let mut orders = backends(ctx).orders.clone();
        let order = call_optional("order-service", "GetOrder", orders.get_order(request)).await?;
        let order = order.ok_or_else(|| errors::with_code("order not found", errors::code::NOT_FOUND))?;
        if !viewer.is_admin() && order.user_id != viewer.user_id {
            return Err(errors::forbidden("you may only follow your own orders"));
        }
        Ok(events.filter_map(move |event| {
            let wanted = order_id.0.clone();
            async move {
                let event = event.ok()?;
                (event.order_id == wanted).then(|| OrderStatusEvent {
                    order_id: ID(event.order_id.clone()),
                    user_id: ID(event.user_id.clone()),
                    from: event.from.clone(),
                    to: event.to.clone(),
                    reason: event.reason.clone(),
                })
            }
        }))
    }

    /// Stock changes of one product. Public, like the catalog.
    async fn product_stock_changed(&self, ctx: &Context<'_>, product_id: ID) -> Result<impl Stream<Item = StockEvent>> {
        let events = BroadcastStream::new(feed(ctx)?.follow_stock(&product_id.0).await.map_err(unavailable)?);
        Ok(events.filter_map(move |event| {
            let wanted = product_id.0.clone();
            async move {
                let event = event.ok()?;
                (event.product_id == wanted).then(|| StockEvent {
                    product_id: ID(event.product_id.clone()),
                    stock: i32::try_from(event.stock).unwrap_or(i32::MAX),
                    delta: event.delta.map(|delta| i32::try_from(delta).unwrap_or(i32::MAX)),
                    reason: event.reason.clone(),
                    order_id: event.order_id.clone().map(ID),
                })
            }
        }))
    }
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
