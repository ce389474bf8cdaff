//! order-service's part of the order saga: product-service's answer decides whether a PENDING
//! order becomes CONFIRMED or CANCELLED (with the reason), with its `order.status.changed`
//! event, in the consumer's transaction.

use events::{
    Envelope,
    consumer::{Handler, HandlerError},
    payloads::ReservationResult,
};
use sqlx::AnyConnection;

use crate::{
    repository::{Transition, transition_in},
    status::OrderStatus,
};

/// Applies `product.reservation.result`.
#[derive(Debug, Clone, Copy)]
pub struct ApplyReservation;

impl Handler<ReservationResult> for ApplyReservation {
    async fn handle(
        &self,
        event: &Envelope<ReservationResult>,
        transaction: &mut AnyConnection,
    ) -> Result<(), HandlerError> {
        let result = &event.payload;
        let next = if result.reserved { OrderStatus::Confirmed } else { OrderStatus::Cancelled };
        match transition_in(transaction, &result.order_id, next, result.reason.as_deref()).await? {
            Transition::Applied(_) => {
                tracing::info!(order_id = %result.order_id, status = %next, reason = ?result.reason, "order decided");
                Ok(())
            }
            // Cancelled by its owner meanwhile: product-service releases what it reserved when
            // it sees that cancellation, so there is nothing to do here.
            Transition::Refused { current } => {
                tracing::info!(order_id = %result.order_id, %current, "reservation result for an order no longer pending");
                Ok(())
            }
            Transition::NotFound => Err(HandlerError::Permanent(format!("order {} does not exist", result.order_id))),
        }
    }
}
