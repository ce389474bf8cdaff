//! The products table. Portable SQL over a [`Database`] (SQLite or PostgreSQL).

use events::{
    outbox::OutboxSignal,
    payloads::{ProductCreated, ProductDeleted, ProductSnapshot, ProductStockUpdated, ProductUpdated},
};
use service_runtime::{
    ServiceResult,
    database::{self, Database},
    paging::PageRequest,
    time,
};

/// A stored product.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub stock: i64,
    pub category: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A validated product to create.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub stock: i64,
    pub category: String,
}

/// Validated changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price_cents: Option<i64>,
    pub stock: Option<i64>,
    pub category: Option<String>,
}

const COLUMNS: &str = "id, name, description, price_cents, stock, category, created_at, updated_at";

/// Reads and writes products.
#[derive(Debug, Clone)]
pub struct ProductRepository {
    database: Database,
    outbox: OutboxSignal,
}

impl ProductRecord {
    fn snapshot(&self) -> ProductSnapshot {
        ProductSnapshot {
            id: self.id.clone(),
            name: self.name.clone(),
            price_cents: self.price_cents,
            stock: self.stock,
            category: self.category.clone(),
        }
    }
}

impl ProductRepository {
    pub fn new(database: Database, outbox: OutboxSignal) -> Self {
        Self { database, outbox }
    }

    pub async fn insert(&self, product: NewProduct) -> ServiceResult<ProductRecord> {
        let query =
            format!("INSERT INTO products ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {COLUMNS}");
        let mut transaction = self.outbox.begin(&self.database).await?;
        let product: ProductRecord = sqlx::query_as(&query)
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(product.name)
            .bind(product.description)
            .bind(product.price_cents)
            .bind(product.stock)
            .bind(product.category)
            .bind(time::now_millis())
            .fetch_one(&mut *transaction)
            .await?;
        let created = ProductCreated { product_id: product.id.clone(), product: product.snapshot() };
        transaction.enqueue(created).await?;
        transaction.commit().await?;
        Ok(product)
    }

    pub async fn find(&self, id: &str) -> ServiceResult<Option<ProductRecord>> {
        let query = format!("SELECT {COLUMNS} FROM products WHERE id = $1");
        Ok(sqlx::query_as(&query).bind(id).fetch_optional(self.database.reads()).await?)
    }

    /// The products among `ids` that exist, in no particular order.
    pub async fn find_many(&self, ids: &[String]) -> ServiceResult<Vec<ProductRecord>> {
        let select = format!("SELECT {COLUMNS} FROM products WHERE id IN");
        Ok(database::fetch_all_in(self.database.reads(), &select, ids, "").await?)
    }

    /// Applies `changes` in one statement; `None` when no product has `id`.
    pub async fn update(&self, id: &str, changes: ProductChanges) -> ServiceResult<Option<ProductRecord>> {
        let query = format!(
            "UPDATE products SET name = COALESCE($2, name), description = COALESCE($3, description), \
             price_cents = COALESCE($4, price_cents), stock = COALESCE($5, stock), \
             category = COALESCE($6, category), updated_at = $7 WHERE id = $1 RETURNING {COLUMNS}"
        );
        let stock_set = changes.stock.is_some();
        let mut transaction = self.outbox.begin(&self.database).await?;
        let product: Option<ProductRecord> = sqlx::query_as(&query)
            .bind(id)
            .bind(changes.name)
            .bind(changes.description)
            .bind(changes.price_cents)
            .bind(changes.stock)
            .bind(changes.category)
            .bind(time::now_millis())
            .fetch_optional(&mut *transaction)
            .await?;
        if let Some(product) = &product {
            let updated = ProductUpdated { product_id: product.id.clone(), product: product.snapshot() };
            transaction.enqueue(updated).await?;
            if stock_set {
                let stock = ProductStockUpdated {
                    product_id: product.id.clone(),
                    stock: product.stock,
                    delta: None,
                    reason: "set".into(),
                    order_id: None,
                };
                transaction.enqueue(stock).await?;
            }
        }
        transaction.commit().await?;
        Ok(product)
    }

    /// Deletes a product; false when there was none.
    pub async fn delete(&self, id: &str) -> ServiceResult<bool> {
        let mut transaction = self.outbox.begin(&self.database).await?;
        let result = sqlx::query("DELETE FROM products WHERE id = $1").bind(id).execute(&mut *transaction).await?;
        let deleted = result.rows_affected() > 0;
        if deleted {
            transaction.enqueue(ProductDeleted { product_id: id.to_owned() }).await?;
        }
        transaction.commit().await?;
        Ok(deleted)
    }

    /// One page in creation order, optionally within `category`, and the matching total when the
    /// page asks for it.
    pub async fn list(
        &self,
        page: PageRequest,
        category: Option<&str>,
    ) -> ServiceResult<(Vec<ProductRecord>, Option<i64>)> {
        let filter = if category.is_some() { "WHERE category = $3" } else { "" };
        let query = format!("SELECT {COLUMNS} FROM products {filter} ORDER BY created_at, id LIMIT $1 OFFSET $2");
        let select = sqlx::query_as(&query).bind(page.limit()).bind(page.offset());
        let select = match category {
            Some(category) => select.bind(category),
            None => select,
        };
        let products = select.fetch_all(self.database.reads()).await?;

        let total = page
            .total(|| {
                let count = match category {
                    Some(category) => {
                        sqlx::query_scalar("SELECT COUNT(*) FROM products WHERE category = $1").bind(category)
                    }
                    None => sqlx::query_scalar("SELECT COUNT(*) FROM products"),
                };
                count.fetch_one(self.database.reads())
            })
            .await?;
        Ok((products, total))
    }
}
