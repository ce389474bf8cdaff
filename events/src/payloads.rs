//! One typed payload per topic. Money is integer cents, times are RFC 3339.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use proto::{order::OrderStatus, user::Role};

use crate::topics;

/// A domain event: its payload, and where and how it is published.
pub trait Event: Serialize + DeserializeOwned + Send + Sync {
    /// The topic it goes to.
    const TOPIC: &'static str;
    /// The type name in the envelope.
    const TYPE: &'static str;
    /// The payload's schema version; consumers refuse versions they do not know.
    const VERSION: u32;
    /// The aggregate id: the Kafka key, so one entity's events keep their order.
    fn key(&self) -> &str;
}

macro_rules! event {
    ($payload:ty, $topic:expr, $type:literal, $version:literal, $key:ident) => {
        impl Event for $payload {
            const TOPIC: &'static str = $topic;
            const TYPE: &'static str = $type;
            const VERSION: u32 = $version;
            fn key(&self) -> &str {
                &self.$key
            }
        }
    };
}

/// A user as events carry it (never the password hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSnapshot {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserCreated {
    pub user_id: String,
    pub user: UserSnapshot,
}
event!(UserCreated, topics::USER_CREATED, "UserCreated", 1, user_id);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdated {
    pub user_id: String,
    pub user: UserSnapshot,
}
event!(UserUpdated, topics::USER_UPDATED, "UserUpdated", 1, user_id);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDeleted {
    pub user_id: String,
}
event!(UserDeleted, topics::USER_DELETED, "UserDeleted", 1, user_id);

/// A product as events carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSnapshot {
    pub id: String,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
    pub category: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductCreated {
    pub product_id: String,
    pub product: ProductSnapshot,
}
event!(ProductCreated, topics::PRODUCT_CREATED, "ProductCreated", 1, product_id);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductUpdated {
    pub product_id: String,
    pub product: ProductSnapshot,
}
event!(ProductUpdated, topics::PRODUCT_UPDATED, "ProductUpdated", 1, product_id);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductDeleted {
    pub product_id: String,
}
event!(ProductDeleted, topics::PRODUCT_DELETED, "ProductDeleted", 1, product_id);

/// A product's stock changed: by a reservation, a release, or an admin's edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductStockUpdated {
    pub product_id: String,
    pub stock: i64,
    /// Positive when stock came back, negative when it was taken; absent when an admin set it.
    pub delta: Option<i64>,
    /// `reserved`, `released` or `set`.
    pub reason: String,
    pub order_id: Option<String>,
}
event!(ProductStockUpdated, topics::PRODUCT_STOCK_UPDATED, "ProductStockUpdated", 1, product_id);

/// One line of an order, as the saga needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub product_id: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<OrderLine>,
    pub total_cents: i64,
}
event!(OrderCreated, topics::ORDER_CREATED, "OrderCreated", 1, order_id);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderStatusChanged {
    pub order_id: String,
    pub user_id: String,
    /// An event naming a status that is none of the machine's fails to decode (dead-lettered).
    pub from: OrderStatus,
    pub to: OrderStatus,
    /// Why, for a cancellation (e.g. "insufficient stock for product …").
    pub reason: Option<String>,
}
event!(OrderStatusChanged, topics::ORDER_STATUS_CHANGED, "OrderStatusChanged", 1, order_id);

/// product-service's answer to `order.created`: every item reserved, or none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationResult {
    pub order_id: String,
    pub reserved: bool,
    pub reason: Option<String>,
}
event!(ReservationResult, topics::PRODUCT_RESERVATION_RESULT, "ReservationResult", 1, order_id);

/// Why a reservation is refused: the reasons' wording, written by product-service and read by
/// people, and the short kind of each (a bounded metric label, where the text names products).
pub mod refusal {
    const CANCELLED: &str = "the order was cancelled before stock was reserved";
    const GONE: &str = "no longer exists";
    const SHORT: &str = "insufficient stock for product";

    pub fn order_cancelled() -> String {
        CANCELLED.to_owned()
    }

    pub fn product_gone(product_id: &str) -> String {
        format!("product {product_id} {GONE}")
    }

    pub fn insufficient_stock(product_id: &str, requested: i64, available: i64) -> String {
        format!("{SHORT} {product_id}: {requested} requested, {available} available")
    }

    /// `insufficient_stock`, `product_gone`, `order_cancelled`, or `other` for a reason this
    /// version did not write.
    pub fn kind(reason: &str) -> &'static str {
        if reason.starts_with(SHORT) {
            "insufficient_stock"
        } else if reason.ends_with(GONE) {
            "product_gone"
        } else if reason == CANCELLED {
            "order_cancelled"
        } else {
            "other"
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn each_reason_has_its_kind() {
            assert_eq!(kind(&insufficient_stock("p", 2, 1)), "insufficient_stock");
            assert_eq!(kind(&product_gone("p")), "product_gone");
            assert_eq!(kind(&order_cancelled()), "order_cancelled");
            assert_eq!(kind("a reason from elsewhere"), "other");
        }
    }
}
