//! product-service's part of the order saga.
//!
//! [`ReserveStock`] answers `order.created`: every line is reserved or none is, and the answer
//! (`product.reservation.result`) plus a `product.stock.updated` per product go to the outbox in
//! the same transaction. [`ReleaseStock`] answers `order.status.changed` to CANCELLED: what the
//! order had reserved goes back to stock, once, and the order is remembered as cancelled so a
//! late `order.created` reserves nothing.

use std::collections::HashMap;

use events::{
    Envelope,
    consumer::{Effect, Handler, HandlerError},
    outbox,
    payloads::{OrderCreated, OrderStatusChanged, ProductStockUpdated, ReservationResult, refusal},
};
use proto::order::OrderStatus;
use service_runtime::{database, time};
use sqlx::AnyConnection;

/// Reserves an order's items.
#[derive(Debug, Clone, Copy)]
pub struct ReserveStock;

/// Releases a cancelled order's items.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseStock;

impl Handler<OrderCreated> for ReserveStock {
    async fn handle(
        &self,
        event: &Envelope<OrderCreated>,
        transaction: &mut AnyConnection,
    ) -> Result<Effect, HandlerError> {
        let order = &event.payload;
        let refusal = match refusal(order, transaction).await? {
            Some(reason) => Some(reason),
            None => {
                reserve(order, transaction).await?;
                None
            }
        };
        let result =
            ReservationResult { order_id: order.order_id.clone(), reserved: refusal.is_none(), reason: refusal };
        tracing::info!(order_id = %order.order_id, reserved = result.reserved, reason = ?result.reason, "reservation decided");
        outbox::enqueue(transaction, result).await?;
        Ok(Effect::none())
    }
}

/// Why `order` cannot be reserved, if it cannot: it was cancelled already, a product is gone,
/// or stock is short. Reads inside the consumer's transaction, after its first write.
async fn refusal(order: &OrderCreated, transaction: &mut AnyConnection) -> Result<Option<String>, HandlerError> {
    let cancelled: Option<String> = sqlx::query_scalar("SELECT order_id FROM cancelled_orders WHERE order_id = $1")
        .bind(&order.order_id)
        .fetch_optional(&mut *transaction)
        .await?;
    if cancelled.is_some() {
        return Ok(Some(refusal::order_cancelled()));
    }
    let ids: Vec<String> = order.items.iter().map(|item| item.product_id.clone()).collect();
    let stock: HashMap<String, i64> = database::fetch_all_in::<(String, i64), _>(
        &mut *transaction,
        "SELECT id, stock FROM products WHERE id IN",
        &ids,
        "",
    )
    .await?
    .into_iter()
    .collect();
    for item in &order.items {
        match stock.get(&item.product_id) {
            None => return Ok(Some(refusal::product_gone(&item.product_id))),
            Some(available) if *available < item.quantity => {
                return Ok(Some(refusal::insufficient_stock(&item.product_id, item.quantity, *available)));
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

/// Takes every line from stock. Each decrement is conditional, so stock can never go
/// negative; if one finds less than it expected (a concurrent writer), the whole transaction is
/// retried from the start.
async fn reserve(order: &OrderCreated, transaction: &mut AnyConnection) -> Result<(), HandlerError> {
    let now = time::now_millis();
    for item in &order.items {
        let stock: Option<i64> = sqlx::query_scalar(
            "UPDATE products SET stock = stock - $2, updated_at = $3 WHERE id = $1 AND stock >= $2 RETURNING stock",
        )
        .bind(&item.product_id)
        .bind(item.quantity)
        .bind(now)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(stock) = stock else {
            return Err(HandlerError::Retryable(anyhow::anyhow!("stock of {} changed underneath", item.product_id)));
        };
        sqlx::query("INSERT INTO reservations (order_id, product_id, quantity, reserved_at) VALUES ($1, $2, $3, $4)")
            .bind(&order.order_id)
            .bind(&item.product_id)
            .bind(item.quantity)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        let update = ProductStockUpdated {
            product_id: item.product_id.clone(),
            stock,
            delta: Some(-item.quantity),
            reason: "reserved".into(),
            order_id: Some(order.order_id.clone()),
        };
        outbox::enqueue(transaction, update).await?;
    }
    Ok(())
}

impl Handler<OrderStatusChanged> for ReleaseStock {
    /// Only a cancellation gives stock back.
    fn concerns(&self, change: &OrderStatusChanged) -> bool {
        change.to == OrderStatus::Cancelled
    }

    async fn handle(
        &self,
        event: &Envelope<OrderStatusChanged>,
        transaction: &mut AnyConnection,
    ) -> Result<Effect, HandlerError> {
        let change = &event.payload;
        let now = time::now_millis();
        sqlx::query(
            "INSERT INTO cancelled_orders (order_id, cancelled_at) VALUES ($1, $2) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(&change.order_id)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        let reserved: Vec<(String, i64)> = sqlx::query_as(
            "UPDATE reservations SET released_at = $2 WHERE order_id = $1 AND released_at IS NULL RETURNING product_id, quantity",
        )
        .bind(&change.order_id)
        .bind(now)
        .fetch_all(&mut *transaction)
        .await?;
        for (product_id, quantity) in reserved {
            let stock: Option<i64> = sqlx::query_scalar(
                "UPDATE products SET stock = stock + $2, updated_at = $3 WHERE id = $1 RETURNING stock",
            )
            .bind(&product_id)
            .bind(quantity)
            .bind(now)
            .fetch_optional(&mut *transaction)
            .await?;
            // A product deleted since has no stock to give back to.
            if let Some(stock) = stock {
                let update = ProductStockUpdated {
                    product_id,
                    stock,
                    delta: Some(quantity),
                    reason: "released".into(),
                    order_id: Some(change.order_id.clone()),
                };
                outbox::enqueue(transaction, update).await?;
            }
        }
        tracing::info!(order_id = %change.order_id, "cancelled order's stock released");
        Ok(Effect::none())
    }
}
