//! The orders and order_items tables. Portable SQL over an `AnyPool` (SQLite or PostgreSQL).

use std::collections::HashMap;

use events::{
    outbox::{self, OutboxSignal},
    payloads::{OrderCreated, OrderLine, OrderStatusChanged},
};
use service_runtime::{ServiceResult, database, paging::PageRequest, time};
use sqlx::{AnyConnection, AnyPool};

use crate::{pricing::PricedOrder, status::OrderStatus};

/// A stored order with its items, in the order they were requested.
#[derive(Debug, Clone)]
pub struct OrderRecord {
    pub id: String,
    pub user_id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub total_cents: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub items: Vec<ItemRecord>,
}

/// One stored line of an order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemRecord {
    pub order_id: String,
    pub product_id: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub struct OrderRow {
    id: String,
    user_id: String,
    status: String,
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
    Refused { current: String },
    /// No order has that id.
    NotFound,
}

const ORDER_COLUMNS: &str = "id, user_id, status, status_reason, total_cents, created_at, updated_at";

/// Reads and writes orders.
#[derive(Debug, Clone)]
pub struct OrderRepository {
    pool: AnyPool,
    outbox: OutboxSignal,
}

impl OrderRepository {
    pub fn new(pool: AnyPool, outbox: OutboxSignal) -> Self {
        Self { pool, outbox }
    }

    /// Stores `order` as PENDING, with its items, in one transaction.
    pub async fn insert(&self, order: PricedOrder) -> ServiceResult<OrderRecord> {
        let id = uuid::Uuid::now_v7().to_string();
        let now = time::now_millis();
        let mut tx = self.pool.begin().await?;
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
        outbox::enqueue(&mut tx, created).await?;
        tx.commit().await?;
        self.outbox.wake();

        let items = order
            .items
            .into_iter()
            .map(|item| ItemRecord {
                order_id: id.clone(),
                product_id: item.product_id,
                quantity: item.quantity,
                unit_price_cents: item.unit_price_cents,
            })
            .collect();
        Ok(OrderRecord {
            id,
            user_id: order.user_id,
            status: OrderStatus::Pending.as_str().to_owned(),
            status_reason: None,
            total_cents: order.total_cents,
            created_at: now,
            updated_at: now,
            items,
        })
    }

    pub async fn find(&self, id: &str) -> ServiceResult<Option<OrderRecord>> {
        let query = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
        let row: Option<OrderRow> = sqlx::query_as(&query).bind(id).fetch_optional(&self.pool).await?;
        Ok(self.with_items(row.into_iter().collect()).await?.pop())
    }

    /// One page of all orders, newest first, and the total count when the page asks for it.
    pub async fn list(&self, page: PageRequest) -> ServiceResult<(Vec<OrderRecord>, Option<i64>)> {
        let query = format!("SELECT {ORDER_COLUMNS} FROM orders ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2");
        let rows = sqlx::query_as(&query).bind(page.limit()).bind(page.offset()).fetch_all(&self.pool).await?;
        let total = page.total(|| sqlx::query_scalar("SELECT COUNT(*) FROM orders").fetch_one(&self.pool)).await?;
        Ok((self.with_items(rows).await?, total))
    }

    /// One page of `user_id`'s orders, newest first, and their total count when the page asks
    /// for it.
    pub async fn list_for_user(
        &self,
        user_id: &str,
        page: PageRequest,
    ) -> ServiceResult<(Vec<OrderRecord>, Option<i64>)> {
        let query = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $3 ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
        );
        let rows =
            sqlx::query_as(&query).bind(page.limit()).bind(page.offset()).bind(user_id).fetch_all(&self.pool).await?;
        let total = page
            .total(|| {
                sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE user_id = $1").bind(user_id).fetch_one(&self.pool)
            })
            .await?;
        Ok((self.with_items(rows).await?, total))
    }

    /// Moves order `id` to `next` if its current status allows it, with its
    /// `order.status.changed` event, in one transaction.
    pub async fn transition(&self, id: &str, next: OrderStatus) -> ServiceResult<Transition> {
        let mut transaction = self.pool.begin().await?;
        let outcome = transition_in(&mut transaction, id, next, None).await?;
        transaction.commit().await?;
        Ok(match outcome {
            Transition::Applied(row) => {
                self.outbox.wake();
                let order = self.with_items(vec![row]).await?.pop();
                order.map_or(Transition::NotFound, Transition::Applied)
            }
            Transition::Refused { current } => Transition::Refused { current },
            Transition::NotFound => Transition::NotFound,
        })
    }

    /// Loads the items of `rows` in one query (no N+1) and joins them on.
    async fn with_items(&self, rows: Vec<OrderRow>) -> ServiceResult<Vec<OrderRecord>> {
        let order_ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        let select = "SELECT order_id, product_id, quantity, unit_price_cents FROM order_items WHERE order_id IN";
        let items: Vec<ItemRecord> =
            database::fetch_all_in(&self.pool, select, &order_ids, "ORDER BY order_id, position").await?;
        let mut items_by_order: HashMap<String, Vec<ItemRecord>> = HashMap::new();
        for item in items {
            items_by_order.entry(item.order_id.clone()).or_default().push(item);
        }
        Ok(rows
            .into_iter()
            .map(|row| OrderRecord {
                items: items_by_order.remove(&row.id).unwrap_or_default(),
                id: row.id,
                user_id: row.user_id,
                status: row.status,
                status_reason: row.status_reason,
                total_cents: row.total_cents,
                created_at: row.created_at,
                updated_at: row.updated_at,
            })
            .collect())
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
                from: from.as_str().to_owned(),
                to: next.as_str().to_owned(),
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
    Ok(current.map_or(Transition::NotFound, |current| Transition::Refused { current }))
}
