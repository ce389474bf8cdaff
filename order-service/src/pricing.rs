//! Checking an order request and pricing it from the catalog. Pure functions, so every rule is
//! unit-tested without a network; `api` feeds them what the peers answered.

use std::collections::HashMap;

use proto::{order::CreateOrderRequest, product::Product};
use service_runtime::{ServiceError, ServiceResult, validate};

/// The most items (distinct products) one order may hold.
pub const MAX_ITEMS: usize = 100;
/// The largest quantity of one product per order.
pub const MAX_QUANTITY: i32 = 10_000;
/// The largest unit price or total a client may send, in cents; a bound on garbage, well above
/// anything the catalog allows (100 items × 10,000 × 10,000,000.00).
const MAX_CLIENT_CENTS: i64 = 1_000_000_000_000_000;

/// A request that is well-formed, not yet checked against the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderDraft {
    pub user_id: String,
    pub items: Vec<DraftItem>,
    /// What the client believes the total is, if it said.
    pub total_cents: Option<i64>,
}

/// One requested line.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftItem {
    pub product_id: String,
    pub quantity: i64,
    /// What the client believes the unit price is, if it said.
    pub price_cents: Option<i64>,
}

/// An order priced from the catalog, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedOrder {
    pub user_id: String,
    pub items: Vec<PricedItem>,
    pub total_cents: i64,
}

/// One line with the catalog's unit price.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedItem {
    pub product_id: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// Checks the shape of a request: ids, quantities, money formats, no empty or duplicate lines.
pub fn draft(request: &CreateOrderRequest) -> ServiceResult<OrderDraft> {
    let user_id = validate::id("userId", &request.user_id)?;
    if request.items.is_empty() {
        return Err(ServiceError::invalid("items", "an order needs at least one item"));
    }
    if request.items.len() > MAX_ITEMS {
        return Err(ServiceError::invalid("items", format!("at most {MAX_ITEMS} items per order")));
    }
    let mut items: Vec<DraftItem> = Vec::with_capacity(request.items.len());
    for (index, item) in request.items.iter().enumerate() {
        let field = |name: &str| format!("items[{index}].{name}");
        let product_id = validate::id(&field("productId"), &item.product_id)?;
        if let Some(first) = items.iter().position(|seen| seen.product_id == product_id) {
            return Err(ServiceError::invalid(
                field("productId"),
                format!("repeats items[{first}]; order a larger quantity instead"),
            ));
        }
        if item.quantity < 1 {
            return Err(ServiceError::invalid(field("quantity"), "must be positive"));
        }
        if item.quantity > MAX_QUANTITY {
            return Err(ServiceError::invalid(field("quantity"), format!("must be at most {MAX_QUANTITY}")));
        }
        let price_cents =
            item.price.map(|price| validate::money_to_cents(&field("price"), price, MAX_CLIENT_CENTS)).transpose()?;
        items.push(DraftItem { product_id, quantity: i64::from(item.quantity), price_cents });
    }
    let total_cents = request
        .total_amount
        .map(|total| validate::money_to_cents("totalAmount", total, MAX_CLIENT_CENTS))
        .transpose()?;
    Ok(OrderDraft { user_id, items, total_cents })
}

/// Prices `draft` from `catalog` (the products that exist, by id). A missing product or a
/// client price or total that disagrees is `INVALID_ARGUMENT` naming the item; a quantity
/// above the current stock fails fast with `FAILED_PRECONDITION`.
pub fn price(draft: OrderDraft, catalog: &HashMap<String, Product>) -> ServiceResult<PricedOrder> {
    let mut items = Vec::with_capacity(draft.items.len());
    let mut total_cents: i64 = 0;
    for (index, item) in draft.items.into_iter().enumerate() {
        let product = catalog.get(&item.product_id).ok_or_else(|| {
            ServiceError::invalid(
                format!("items[{index}].productId"),
                format!("product {} does not exist", item.product_id),
            )
        })?;
        let unit_price_cents = catalog_cents(product.price);
        if let Some(claimed) = item.price_cents.filter(|claimed| *claimed != unit_price_cents) {
            return Err(ServiceError::invalid(
                format!("items[{index}].price"),
                format!("{} does not match the catalog price {}", money(claimed), money(unit_price_cents)),
            ));
        }
        if item.quantity > i64::from(product.stock) {
            return Err(ServiceError::FailedPrecondition(format!(
                "items[{index}].quantity: {} requested but only {} of product {} in stock",
                item.quantity, product.stock, product.id
            )));
        }
        // A catalog price is at most 10,000,000.00 and a quantity at most 10,000, so 100 lines
        // stay far below i64's range; checked all the same, so a price that is not what the
        // catalog promises (a peer's bug) is an error, not an overflow.
        total_cents = unit_price_cents
            .checked_mul(item.quantity)
            .and_then(|line| total_cents.checked_add(line))
            .ok_or_else(|| ServiceError::invalid(format!("items[{index}].quantity"), "the total is out of range"))?;
        items.push(PricedItem { product_id: item.product_id, quantity: item.quantity, unit_price_cents });
    }
    if let Some(claimed) = draft.total_cents.filter(|claimed| *claimed != total_cents) {
        return Err(ServiceError::invalid(
            "totalAmount",
            format!("{} does not match the catalog total {}", money(claimed), money(total_cents)),
        ));
    }
    Ok(PricedOrder { user_id: draft.user_id, items, total_cents })
}

/// The catalog's price in cents. product-service only ever stores whole cents.
fn catalog_cents(price: f64) -> i64 {
    (price * 100.0).round() as i64
}

fn money(cents: i64) -> String {
    format!("{:.2}", validate::cents_to_money(cents))
}

#[cfg(test)]
mod tests {
    use proto::order::OrderItem;

    use super::*;

    fn id() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    fn request(items: Vec<OrderItem>, total: Option<f64>) -> CreateOrderRequest {
        CreateOrderRequest { user_id: id(), items, total_amount: total }
    }

    fn item(product_id: &str, quantity: i32, price: Option<f64>) -> OrderItem {
        OrderItem { product_id: product_id.into(), quantity, price }
    }

    fn catalog(entries: &[(&str, f64, i32)]) -> HashMap<String, Product> {
        entries
            .iter()
            .map(|(id, price, stock)| {
                let product = Product { id: (*id).into(), price: *price, stock: *stock, ..Default::default() };
                ((*id).to_owned(), product)
            })
            .collect()
    }

    #[track_caller]
    fn assert_invalid<T: std::fmt::Debug>(result: ServiceResult<T>, prefix: &str) {
        let error = result.expect_err("rejected");
        assert!(matches!(error, ServiceError::InvalidArgument { .. }), "{error:?}");
        assert!(error.to_string().starts_with(prefix), "{error} should start with {prefix}");
    }

    #[test]
    fn prices_and_totals_come_from_the_catalog() {
        let (pen, ink) = (id(), id());
        let draft = draft(&request(vec![item(&pen, 2, None), item(&ink, 3, Some(0.1))], None)).expect("draft");
        let priced = price(draft, &catalog(&[(&pen, 29.99, 5), (&ink, 0.1, 3)])).expect("priced");
        assert_eq!(priced.total_cents, 2 * 2999 + 3 * 10);
        assert_eq!(priced.items[0].unit_price_cents, 2999);
    }

    #[test]
    fn a_client_price_or_total_that_disagrees_is_rejected_naming_it() {
        let pen = id();
        let stock = catalog(&[(&pen, 29.99, 5)]);
        let tampered = draft(&request(vec![item(&pen, 2, Some(0.01))], None)).expect("draft");
        assert_invalid(price(tampered, &stock), "items[0].price: 0.01 does not match the catalog price 29.99");
        let wrong_total = draft(&request(vec![item(&pen, 2, Some(29.99))], Some(1.0))).expect("draft");
        assert_invalid(price(wrong_total, &stock), "totalAmount: 1.00 does not match the catalog total 59.98");
        let right = draft(&request(vec![item(&pen, 2, Some(29.99))], Some(59.98))).expect("draft");
        assert_eq!(price(right, &stock).expect("priced").total_cents, 5998);
    }

    #[test]
    fn malformed_requests_name_the_field() {
        let pen = id();
        assert_invalid(draft(&request(vec![], None)), "items: ");
        assert_invalid(draft(&request(vec![item(&pen, 0, None)], None)), "items[0].quantity: ");
        assert_invalid(draft(&request(vec![item(&pen, -2, None)], None)), "items[0].quantity: ");
        assert_invalid(draft(&request(vec![item(&pen, MAX_QUANTITY + 1, None)], None)), "items[0].quantity: ");
        assert_invalid(draft(&request(vec![item("pen", 1, None)], None)), "items[0].productId: ");
        assert_invalid(
            draft(&request(vec![item(&pen, 1, None), item(&pen, 1, None)], None)),
            "items[1].productId: repeats items[0]",
        );
        assert_invalid(draft(&request(vec![item(&pen, 1, Some(1.001))], None)), "items[0].price: ");
        assert_invalid(draft(&request(vec![item(&pen, 1, None)], Some(-1.0))), "totalAmount: ");
        let mut no_user = request(vec![item(&pen, 1, None)], None);
        no_user.user_id = String::new();
        assert_invalid(draft(&no_user), "userId: ");
        let too_many = (0..=MAX_ITEMS).map(|_| item(&id(), 1, None)).collect();
        assert_invalid(draft(&request(too_many, None)), "items: ");
    }

    #[test]
    fn missing_products_and_short_stock_are_rejected() {
        let (pen, gone) = (id(), id());
        let stock = catalog(&[(&pen, 1.0, 3)]);
        let missing = draft(&request(vec![item(&pen, 1, None), item(&gone, 1, None)], None)).expect("draft");
        assert_invalid(price(missing, &stock), "items[1].productId: ");
        let short = draft(&request(vec![item(&pen, 4, None)], None)).expect("draft");
        let error = price(short, &stock).expect_err("short");
        assert!(matches!(error, ServiceError::FailedPrecondition(_)), "{error:?}");
        assert!(error.to_string().starts_with("items[0].quantity: 4 requested but only 3"), "{error}");
    }
}
