//! The orders and order_items tables. Portable SQL over a [`Database`] (SQLite or PostgreSQL).

use events::{
    outbox::{self, OutboxSignal},
    payloads::{OrderCreated, OrderLine, OrderStatusChanged},
};
use service_runtime::{
    ServiceResult,
    database::{self, Database},
    paging::PageRequest,
    time,
};
use sqlx::AnyConnection;

use crate::{pricing::PricedOrder, status::OrderStatus};

/// A stored order with its items, in the order they were requested.
#[derive(Debug, Clone)]
pub struct OrderRecord {
    pub id: String,
    pub user_id: String,
    pub status: OrderStatus,
    pub status_reason: Option<String>,
    pub total_cents: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub items: Vec<ItemRecord>,
}

/// One stored line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    pub product_id: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub struct OrderRow {
    id: String,
    user_id: String,
    /// A stored name that is not a status fails the read (it cannot come from this service).
    #[sqlx(try_from = "String")]
    status: OrderStatus,
    status_reason: Option<String>,
    total_cents: i64,
    created_at: i64,
    updated_at: i64,
}

impl OrderRow {
    /// How long the order had existed when it was last changed (by the change just made, right
    /// after a transition): for a decided order, how long it was PENDING.
    pub fn age_at_last_change(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(self.updated_at - self.created_at).unwrap_or(0))
    }
}

/// What a status change came to.
#[derive(Debug)]
pub enum Transition<T = OrderRecord> {
    /// The order moved; here it is as stored now.
    Applied(T),
    /// The machine does not allow it from the order's current status.
    Refused { current: OrderStatus },
    /// No order has that id.
    NotFound,
}

/// An order's own columns (a macro, so that [`ORDERS_WITH_ITEMS`] can be put together at
/// compile time).
macro_rules! order_columns {
    () => {
        "id, user_id, status, status_reason, total_cents, created_at, updated_at"
    };
}

const ORDER_COLUMNS: &str = order_columns!();

/// The items column of [`ORDERS_WITH_ITEMS`], for the order of the row at hand.
macro_rules! items_of_order {
    () => {
        "(SELECT string_agg(i.product_id || ':' || i.quantity || ':' || i.unit_price_cents, ',' ORDER BY i.position) \
         FROM order_items i WHERE i.order_id = orders.id)"
    };
}

/// Orders with their items in one column, `product_id:quantity:unit_price_cents` per item in
/// the order they were requested, comma-separated: one query and one row per order. Reading the
/// items as rows of their own cost a second query and a row each, and on SQLite every row is a
/// hand-off from the connection's thread; a page of 20 orders of 3 items went from 80 rows to
/// 20. (`string_agg` with `ORDER BY` is in PostgreSQL and in SQLite since 3.44.)
const ORDERS_WITH_ITEMS: &str = concat!("SELECT ", order_columns!(), ", ", items_of_order!(), " AS items FROM orders");

/// An order as [`ORDERS_WITH_ITEMS`] reads it.
#[derive(Debug, sqlx::FromRow)]
struct OrderWithItemsRow {
    #[sqlx(flatten)]
    order: OrderRow,
    items: Option<String>,
}

impl TryFrom<OrderWithItemsRow> for OrderRecord {
    type Error = sqlx::Error;

    fn try_from(row: OrderWithItemsRow) -> Result<Self, sqlx::Error> {
        let items = match row.items.as_deref() {
            None | Some("") => Vec::new(),
            Some(items) => items.split(',').map(parse_item).collect::<Result<_, _>>()?,
        };
        let order = row.order;
        Ok(Self {
            id: order.id,
            user_id: order.user_id,
            status: order.status,
            status_reason: order.status_reason,
            total_cents: order.total_cents,
            created_at: order.created_at,
            updated_at: order.updated_at,
            items,
        })
    }
}

/// One `product_id:quantity:unit_price_cents` of [`ORDERS_WITH_ITEMS`]. Product ids are UUIDs
/// and the numbers integers, so neither separator occurs inside a field.
fn parse_item(item: &str) -> Result<ItemRecord, sqlx::Error> {
    let malformed = || sqlx::Error::Decode(format!("malformed order item {item:?}").into());
    let mut fields = item.split(':');
    let (Some(product_id), Some(quantity), Some(unit_price_cents), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(malformed());
    };
    Ok(ItemRecord {
        product_id: product_id.to_owned(),
        quantity: quantity.parse().map_err(|_| malformed())?,
        unit_price_cents: unit_price_cents.parse().map_err(|_| malformed())?,
    })
}

/// The orders `rows` hold, items included.
fn records(rows: Vec<OrderWithItemsRow>) -> ServiceResult<Vec<OrderRecord>> {
    Ok(rows.into_iter().map(OrderRecord::try_from).collect::<Result<_, _>>()?)
}

/// Reads and writes orders.
#[derive(Debug, Clone)]
pub struct OrderRepository {
    database: Database,
    outbox: OutboxSignal,
}

impl OrderRepository {
    pub fn new(database: Database, outbox: OutboxSignal) -> Self {
        Self { database, outbox }
    }

    /// Stores `order` as PENDING, with its items, in one transaction.
    pub async fn insert(&self, order: PricedOrder) -> ServiceResult<OrderRecord> {
        let id = uuid::Uuid::now_v7().to_string();
        let now = time::now_millis();
        let mut tx = self.outbox.begin(&self.database).await?;
        // The first statement writes, so SQLite takes its write lock at once rather than
        // upgrading a read lock later (which could fail under concurrency).
        sqlx::query("INSERT INTO orders (id, user_id, status, total_cents, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
            .bind(&id)
            .bind(&order.user_id)
            .bind(OrderStatus::Pending.as_str())
            .bind(order.total_cents)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let rows = (0..order.items.len())
            .map(|index| format!("({})", database::placeholders(index * 5 + 1, 5)))
            .collect::<Vec<_>>()
            .join(", ");
        let query = format!(
            "INSERT INTO order_items (order_id, position, product_id, quantity, unit_price_cents) VALUES {rows}"
        );
        let mut insert_items = sqlx::query(&query);
        for (position, item) in order.items.iter().enumerate() {
            insert_items = insert_items
                .bind(&id)
                .bind(position as i64)
                .bind(&item.product_id)
                .bind(item.quantity)
                .bind(item.unit_price_cents);
        }
        insert_items.execute(&mut *tx).await?;
        let created = OrderCreated {
            order_id: id.clone(),
            user_id: order.user_id.clone(),
            items: order
                .items
                .iter()
                .map(|item| OrderLine {
                    product_id: item.product_id.clone(),
                    quantity: item.quantity,
                    unit_price_cents: item.unit_price_cents,
                })
                .collect(),
            total_cents: order.total_cents,
        };
        tx.enqueue(created).await?;
        tx.commit().await?;

        let items = order
            .items
            .into_iter()
            .map(|item| ItemRecord {
                product_id: item.product_id,
                quantity: item.quantity,
                unit_price_cents: item.unit_price_cents,
            })
            .collect();
        Ok(OrderRecord {
            id,
            user_id: order.user_id,
            status: OrderStatus::Pending,
            status_reason: None,
            total_cents: order.total_cents,
            created_at: now,
            updated_at: now,
            items,
        })
    }

    pub async fn find(&self, id: &str) -> ServiceResult<Option<OrderRecord>> {
        let query = format!("{ORDERS_WITH_ITEMS} WHERE id = $1");
        let row: Option<OrderWithItemsRow> =
            sqlx::query_as(&query).bind(id).fetch_optional(self.database.reads()).await?;
        Ok(row.map(OrderRecord::try_from).transpose()?)
    }

    /// One page of all orders, newest first, and the total count when the page asks for it.
    pub async fn list(&self, page: PageRequest) -> ServiceResult<(Vec<OrderRecord>, Option<i64>)> {
        let query = format!("{ORDERS_WITH_ITEMS} ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2");
        let rows =
            sqlx::query_as(&query).bind(page.limit()).bind(page.offset()).fetch_all(self.database.reads()).await?;
        let total =
            page.total(|| sqlx::query_scalar("SELECT COUNT(*) FROM orders").fetch_one(self.database.reads())).await?;
        Ok((records(rows)?, total))
    }

    /// One page of `user_id`'s orders, newest first, and their total count when the page asks
    /// for it.
    pub async fn list_for_user(
        &self,
        user_id: &str,
        page: PageRequest,
    ) -> ServiceResult<(Vec<OrderRecord>, Option<i64>)> {
        let query =
            format!("{ORDERS_WITH_ITEMS} WHERE user_id = $3 ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2");
        let rows = sqlx::query_as(&query)
            .bind(page.limit())
            .bind(page.offset())
            .bind(user_id)
            .fetch_all(self.database.reads())
            .await?;
        let total = page
            .total(|| {
                sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_one(self.database.reads())
            })
            .await?;
        Ok((records(rows)?, total))
    }

    /// Moves order `id` to `next` if its current status allows it, with its
    /// `order.status.changed` event, in one transaction.
    pub async fn transition(&self, id: &str, next: OrderStatus) -> ServiceResult<Transition> {
        let mut transaction = self.outbox.begin(&self.database).await?;
        let outcome = transition_in(&mut transaction, id, next, None).await?;
        transaction.commit().await?;
        Ok(match outcome {
            Transition::Applied(order) => {
                // The order as the transition left it, with its items (which never change).
                let query = concat!("SELECT ", items_of_order!(), " AS items FROM orders WHERE id = $1");
                let items: Option<Option<String>> =
                    sqlx::query_scalar(query).bind(id).fetch_optional(self.database.reads()).await?;
                match items {
                    Some(items) => Transition::Applied(OrderWithItemsRow { order, items }.try_into()?),
                    None => Transition::NotFound,
                }
            }
            Transition::Refused { current } => Transition::Refused { current },
            Transition::NotFound => Transition::NotFound,
        })
    }
}

/// Moves order `id` to `next` within the caller's transaction and writes its
/// `order.status.changed` event there too. Each allowed predecessor is tried with one
/// conditional UPDATE, so the check and the write are atomic and the event knows the status
/// the order came from.
pub async fn transition_in(
    transaction: &mut AnyConnection,
    id: &str,
    next: OrderStatus,
    reason: Option<&str>,
) -> sqlx::Result<Transition<OrderRow>> {
    let query = format!(
        "UPDATE orders SET status = $2, status_reason = $3, updated_at = $4 WHERE id = $1 AND status = $5 \
         RETURNING {ORDER_COLUMNS}"
    );
    for from in next.predecessors() {
        let row: Option<OrderRow> = sqlx::query_as(&query)
            .bind(id)
            .bind(next.as_str())
            .bind(reason)
            .bind(time::now_millis())
            .bind(from.as_str())
            .fetch_optional(&mut *transaction)
            .await?;
        if let Some(row) = row {
            let changed = OrderStatusChanged {
                order_id: row.id.clone(),
                user_id: row.user_id.clone(),
                from: *from,
                to: next,
                reason: reason.map(str::to_owned),
            };
            outbox::enqueue(transaction, changed).await?;
            return Ok(Transition::Applied(row));
        }
    }
    let current: Option<String> = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *transaction)
        .await?;
    match current {
        None => Ok(Transition::NotFound),
        Some(current) => {
            let current = current.parse().map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
            Ok(Transition::Refused { current })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_read_back_in_order() {
        let id = "0190b1e2-0000-7000-8000-000000000001";
        let items = format!("{id}:2:1999,{id}:1:0");
        let parsed: Vec<ItemRecord> = items.split(',').map(parse_item).collect::<Result<_, _>>().expect("parse");
        assert_eq!(
            parsed,
            [
                ItemRecord { product_id: id.to_owned(), quantity: 2, unit_price_cents: 1999 },
                ItemRecord { product_id: id.to_owned(), quantity: 1, unit_price_cents: 0 },
            ]
        );
    }

    #[test]
    fn a_malformed_item_is_a_decode_error_not_a_panic() {
        for malformed in ["", "p:1", "p:1:2:3", "p:x:2", "p:1:9999999999999999999999"] {
            assert!(matches!(parse_item(malformed), Err(sqlx::Error::Decode(_))), "{malformed:?}");
        }
    }
}
