//! order-service's part of the order saga: product-service's answer decides whether a PENDING
//! order becomes CONFIRMED or CANCELLED (with the reason), with its `order.status.changed`
//! event, in the consumer's transaction.

use events::{
    Envelope,
    consumer::{Effect, Handler, HandlerError},
    payloads::{ReservationResult, refusal},
};
use std::time::Duration;

use sqlx::AnyConnection;

use crate::{
    repository::{Transition, transition_in},
    status::OrderStatus,
};

/// Applies `product.reservation.result`.
#[derive(Debug, Clone, Copy)]
pub struct ApplyReservation;

/// Counts a decided order (`saga_orders_settled_total{status, reason}`) and how long it was
/// PENDING (`saga_settle_seconds`).
fn count_settled(status: OrderStatus, reason: &'static str, pending_for: Duration) {
    metrics::counter!("saga_orders_settled_total", "status" => status.as_str(), "reason" => reason).increment(1);
    metrics::histogram!("saga_settle_seconds", "status" => status.as_str()).record(pending_for);
}

impl Handler<ReservationResult> for ApplyReservation {
    async fn handle(
        &self,
        event: &Envelope<ReservationResult>,
        transaction: &mut AnyConnection,
    ) -> Result<Effect, HandlerError> {
        let result = &event.payload;
        let next = if result.reserved { OrderStatus::Confirmed } else { OrderStatus::Cancelled };
        match transition_in(transaction, &result.order_id, next, result.reason.as_deref()).await? {
            Transition::Applied(order) => {
                tracing::info!(order_id = %result.order_id, status = %next, reason = ?result.reason, "order decided");
                let reason = result.reason.as_deref().map_or("none", refusal::kind);
                let pending_for = order.age_at_last_change();
                Ok(Effect::after_commit(move || count_settled(next, reason, pending_for)))
            }
            // Cancelled by its owner meanwhile: product-service releases what it reserved when
            // it sees that cancellation, so there is nothing to do here.
            Transition::Refused { current } => {
                tracing::info!(order_id = %result.order_id, %current, "reservation result for an order no longer pending");
                Ok(Effect::none())
            }
            Transition::NotFound => Err(HandlerError::Permanent(format!("order {} does not exist", result.order_id))),
        }
    }
}
