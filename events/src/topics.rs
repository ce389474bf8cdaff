//! Topic names. The original's are kept; deletes, the saga reply and dead-letter topics are added.

pub const USER_CREATED: &str = "user.created";
pub const USER_UPDATED: &str = "user.updated";
pub const USER_DELETED: &str = "user.deleted";
pub const PRODUCT_CREATED: &str = "product.created";
pub const PRODUCT_UPDATED: &str = "product.updated";
pub const PRODUCT_DELETED: &str = "product.deleted";
pub const PRODUCT_STOCK_UPDATED: &str = "product.stock.updated";
/// The saga's reply: product-service's answer to `order.created`.
pub const PRODUCT_RESERVATION_RESULT: &str = "product.reservation.result";
pub const ORDER_CREATED: &str = "order.created";
pub const ORDER_STATUS_CHANGED: &str = "order.status.changed";

/// Every domain topic; each also has a dead-letter topic.
pub const ALL: [&str; 10] = [
    USER_CREATED,
    USER_UPDATED,
    USER_DELETED,
    PRODUCT_CREATED,
    PRODUCT_UPDATED,
    PRODUCT_DELETED,
    PRODUCT_STOCK_UPDATED,
    PRODUCT_RESERVATION_RESULT,
    ORDER_CREATED,
    ORDER_STATUS_CHANGED,
];

/// Where messages from `topic` that cannot be processed go.
pub fn dead_letter(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Every topic and its dead-letter topic, for creation at start.
pub fn all_with_dead_letters() -> Vec<String> {
    ALL.iter().flat_map(|topic| [(*topic).to_owned(), dead_letter(topic)]).collect()
}
