//! Entry points for the fuzz targets (`fuzz/`): what order-service does with a `CreateOrder`
//! request's bytes before it asks its peers. Not part of the service's API.

use std::collections::HashMap;

use prost::Message as _;
use proto::{order::CreateOrderRequest, product::Product};

use crate::pricing::{self, MAX_ITEMS, MAX_QUANTITY};

/// Decodes a `CreateOrderRequest`, checks it, and prices what passes against a catalog that
/// holds every product it names (at the client's unit price, where it gave one). Panics when
/// an accepted draft breaks a rule or a priced total is not the sum of its lines.
pub fn create_order_request(bytes: &[u8]) {
    let Ok(request) = CreateOrderRequest::decode(bytes) else { return };
    let Ok(draft) = pricing::draft(&request) else { return };
    assert!((1..=MAX_ITEMS).contains(&draft.items.len()), "an accepted order has 1 to {MAX_ITEMS} lines");
    for item in &draft.items {
        assert!((1..=i64::from(MAX_QUANTITY)).contains(&item.quantity), "quantity {}", item.quantity);
        assert!(!item.product_id.is_empty());
    }
    let catalog: HashMap<String, Product> = draft
        .items
        .iter()
        .map(|item| {
            let price = item.price_cents.map_or(12.5, service_runtime::validate::cents_to_money);
            let product = Product { id: item.product_id.clone(), price, stock: i32::MAX, ..Default::default() };
            (item.product_id.clone(), product)
        })
        .collect();
    if let Ok(priced) = pricing::price(draft, &catalog) {
        let sum: i128 =
            priced.items.iter().map(|item| i128::from(item.unit_price_cents) * i128::from(item.quantity)).sum();
        assert_eq!(i128::from(priced.total_cents), sum, "the total is the sum of the lines");
    }
}
