//! Creating and reading orders: catalog prices, rejections, paging and persistence.

use proto::order::{CreateOrderRequest, GetOrderRequest, GetOrdersRequest, GetUserOrdersRequest};
use test_support::{DatabaseKind, backend_tests, grpc::assert_status};
use tonic::Code;

use crate::helpers::{item, spawn_order_system};

backend_tests!(
    an_order_is_priced_from_the_catalog_and_stored_pending,
    a_tampered_price_or_total_is_rejected,
    missing_users_and_products_are_rejected,
    malformed_orders_name_the_field,
    obviously_short_stock_fails_fast,
    orders_are_paged_newest_first_overall_and_per_user,
    orders_survive_a_restart,
    health_and_reflection,
    a_down_product_service_makes_orders_unavailable,
);

async fn an_order_is_priced_from_the_catalog_and_stored_pending(backend: DatabaseKind) {
    let mut system = spawn_order_system(backend).await;
    let buyer = system.user("buyer@example.com").await;
    let (pen, ink) = (system.product(29.99, 10).await, system.product(0.1, 100).await);
    let request = CreateOrderRequest {
        user_id: buyer.clone(),
        items: vec![item(&pen, 2, Some(29.99)), item(&ink, 3, None)],
        total_amount: Some(60.28),
    };
    let order = system.orders.create_order(request).await.expect("create").into_inner();
    assert_eq!((order.user_id.as_str(), order.status.as_str(), order.total_amount), (buyer.as_str(), "PENDING", 60.28));
    assert_eq!(order.items, vec![item(&pen, 2, Some(29.99)), item(&ink, 3, Some(0.1))]);
    assert!(order.created_at.ends_with('Z'));

    let fetched = system.orders.get_order(GetOrderRequest { id: order.id.clone() }).await.expect("get");
    assert_eq!(fetched.into_inner(), order);
    let missing = GetOrderRequest { id: uuid::Uuid::now_v7().to_string() };
    assert_status(system.orders.get_order(missing).await, Code::NotFound, "order ");
    assert_status(system.orders.get_order(GetOrderRequest { id: "7".into() }).await, Code::InvalidArgument, "id: ");
}

async fn a_tampered_price_or_total_is_rejected(backend: DatabaseKind) {
    let mut system = spawn_order_system(backend).await;
    let buyer = system.user("buyer@example.com").await;
    let laptop = system.product(999.99, 5).await;
    let tampered =
        CreateOrderRequest { user_id: buyer.clone(), items: vec![item(&laptop, 1, Some(0.99))], total_amount: None };
    assert_status(system.orders.create_order(tampered).await, Code::InvalidArgument, "items[0].price: ");
    let low_total =
        CreateOrderRequest { user_id: buyer.clone(), items: vec![item(&laptop, 2, None)], total_amount: Some(999.99) };
    assert_status(system.orders.create_order(low_total).await, Code::InvalidArgument, "totalAmount: ");
    let page = system.orders.get_orders(GetOrdersRequest::default()).await.expect("list").into_inner();
    assert_eq!(page.total, Some(0), "nothing was stored");
}

async fn missing_users_and_products_are_rejected(backend: DatabaseKind) {
    let mut system = spawn_order_system(backend).await;
    let buyer = system.user("buyer@example.com").await;
    let pen = system.product(1.0, 5).await;
    let ghost = uuid::Uuid::now_v7().to_string();
    let no_user = CreateOrderRequest { user_id: ghost.clone(), items: vec![item(&pen, 1, None)], total_amount: None };
    assert_status(system.orders.create_order(no_user).await, Code::InvalidArgument, "userId: ");
    let no_product = CreateOrderRequest {
        user_id: buyer,
        items: vec![item(&pen, 1, None), item(&ghost, 1, None)],
        total_amount: None,
    };
    assert_status(system.orders.create_order(no_product).await, Code::InvalidArgument, "items[1].productId: ");
}

async fn malformed_orders_name_the_field(backend: DatabaseKind) {
    let mut system = spawn_order_system(backend).await;
    let buyer = system.user("buyer@example.com").await;
    let pen = system.product(1.0, 5).await;
    for (items, field) in [
        (vec![], "items: "),
        (vec![item(&pen, 0, None)], "items[0].quantity: "),
        (vec![item(&pen, -1, None)], "items[0].quantity: "),
        (vec![item("pen", 1, None)], "items[0].productId: "),
        (vec![item(&pen, 1, Some(1.001))], "items[0].price: "),
    ] {
        let request = CreateOrderRequest { user_id: buyer.clone(), items, total_amount: None };
        assert_status(system.orders.create_order(request).await, Code::InvalidArgument, field);
    }
}

async fn obviously_short_stock_fails_fast(backend: DatabaseKind) {
    let mut system = spawn_order_system(backend).await;
    let buyer = system.user("buyer@example.com").await;
    let rare = system.product(5.0, 2).await;
    let request = CreateOrderRequest { user_id: buyer.clone(), items: vec![item(&rare, 3, None)], total_amount: None };
    assert_status(system.orders.create_order(request).await, Code::FailedPrecondition, "items[0].quantity: ");
    assert_eq!(system.order(&buyer, &[(&rare, 2)]).await.total_amount, 10.0, "exactly the stock is fine");
}

async fn orders_are_paged_newest_first_overall_and_per_user(backend: DatabaseKind) {
    let mut system = spawn_order_system(backend).await;
    let (ada, bob) = (system.user("ada@example.com").await, system.user("bob@example.com").await);
    let pen = system.product(1.0, 1_000).await;
    let mut ada_orders = Vec::new();
    for quantity in 1..=3 {
        ada_orders.push(system.order(&ada, &[(&pen, quantity)]).await.id);
        system.order(&bob, &[(&pen, quantity)]).await;
    }
    ada_orders.reverse();

    let mut seen = Vec::new();
    for page in 1..=2 {
        let request =
            GetUserOrdersRequest { user_id: ada.clone(), page: Some(page), limit: Some(2), count_total: None };
        let response = system.orders.get_user_orders(request).await.expect("user orders").into_inner();
        assert_eq!((response.total, response.page, response.limit), (Some(3), page, 2));
        assert!(response.orders.iter().all(|order| order.user_id == ada && order.items.len() == 1));
        seen.extend(response.orders.into_iter().map(|order| order.id));
    }
    assert_eq!(seen, ada_orders, "newest first, pages disjoint");

    let all = GetOrdersRequest { page: Some(1), limit: Some(100), count_total: None };
    let all = system.orders.get_orders(all).await.expect("all");
    assert_eq!((all.get_ref().total, all.get_ref().orders.len()), (Some(6), 6));
    let uncounted = GetUserOrdersRequest { user_id: ada.clone(), count_total: Some(false), ..Default::default() };
    let uncounted = system.orders.get_user_orders(uncounted).await.expect("uncounted").into_inner();
    assert_eq!((uncounted.total, uncounted.orders.len()), (None, 3), "the total only when asked for");
    let stranger = GetUserOrdersRequest { user_id: uuid::Uuid::now_v7().to_string(), ..Default::default() };
    assert_eq!(system.orders.get_user_orders(stranger).await.expect("none").get_ref().total, Some(0));
    for (page, limit, field) in [(0, 1, "page: "), (1, 101, "limit: ")] {
        let request = GetOrdersRequest { page: Some(page), limit: Some(limit), count_total: None };
        assert_status(system.orders.get_orders(request).await, Code::InvalidArgument, field);
    }
    let bad_user = GetUserOrdersRequest { user_id: "ada".into(), ..Default::default() };
    assert_status(system.orders.get_user_orders(bad_user).await, Code::InvalidArgument, "userId: ");
}

async fn orders_survive_a_restart(backend: DatabaseKind) {
    let mut system = spawn_order_system(backend).await;
    let buyer = system.user("buyer@example.com").await;
    let (pen, ink) = (system.product(2.5, 10).await, system.product(4.0, 10).await);
    let order = system.order(&buyer, &[(&pen, 2), (&ink, 1)]).await;
    let mut system = system.restart_orders().await;
    let fetched = system.orders.get_order(GetOrderRequest { id: order.id.clone() }).await.expect("get").into_inner();
    assert_eq!(fetched, order, "order and items as they were");
}

async fn health_and_reflection(backend: DatabaseKind) {
    let system = spawn_order_system(backend).await;
    assert_eq!(order_service::SERVICE_NAME, "order.OrderService");
    test_support::grpc::assert_health_and_reflection(&system.order_server.url(), order_service::SERVICE_NAME).await;
}

async fn a_down_product_service_makes_orders_unavailable(backend: DatabaseKind) {
    let mut system = spawn_order_system(backend).await;
    let buyer = system.user("buyer@example.com").await;
    let pen = system.product(1.0, 1).await;
    system.stop_products().await;
    let request = CreateOrderRequest { user_id: buyer, items: vec![item(&pen, 1, None)], total_amount: None };
    assert_status(system.orders.create_order(request).await, Code::Unavailable, "product-service is unavailable");
    let page = system.orders.get_orders(GetOrdersRequest::default()).await.expect("list").into_inner();
    assert_eq!(page.total, Some(0), "nothing was stored");
}
