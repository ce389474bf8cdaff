//! Every product RPC, its errors, paging and persistence, on SQLite and PostgreSQL.

use proto::product::{
    DeleteProductRequest, GetProductRequest, GetProductsByIdsRequest, GetProductsRequest, Product, UpdateProductRequest,
};
use test_support::{DatabaseKind, backend_tests, grpc::assert_status};
use tonic::Code;

use crate::helpers::{TestProductService, product, spawn_product_service};

backend_tests!(
    create_get_update_delete,
    prices_keep_two_decimals_exactly,
    invalid_input_names_the_field,
    products_are_paged_by_category_in_creation_order,
    batch_get_returns_the_products_that_exist,
    data_survives_a_restart,
    health_and_reflection,
);

async fn create_get_update_delete(backend: DatabaseKind) {
    let mut service = spawn_product_service(backend).await;
    let laptop = service.create("Laptop", 999.99, 50, "Electronics").await;
    assert_eq!(
        (laptop.name.as_str(), laptop.description.as_str(), laptop.price, laptop.stock, laptop.category.as_str()),
        ("Laptop", "Laptop, described", 999.99, 50, "Electronics")
    );
    let fetched = service.client.get_product(GetProductRequest { id: laptop.id.clone() }).await.expect("get");
    assert_eq!(fetched.into_inner(), laptop);

    let update =
        UpdateProductRequest { id: laptop.id.clone(), price: Some(899.5), stock: Some(0), ..Default::default() };
    let updated = service.client.update_product(update).await.expect("update").into_inner();
    assert_eq!((updated.price, updated.stock, updated.name.as_str()), (899.5, 0, "Laptop"), "only given fields change");
    assert_eq!(updated.created_at, laptop.created_at);

    let deleted = service.client.delete_product(DeleteProductRequest { id: laptop.id.clone() }).await.expect("delete");
    assert!(deleted.get_ref().success);
    let get = GetProductRequest { id: laptop.id.clone() };
    assert_status(service.client.get_product(get).await, Code::NotFound, "product ");
    let delete = DeleteProductRequest { id: laptop.id.clone() };
    assert_status(service.client.delete_product(delete).await, Code::NotFound, "product ");
    let update = UpdateProductRequest { id: laptop.id, stock: Some(1), ..Default::default() };
    assert_status(service.client.update_product(update).await, Code::NotFound, "product ");
}

async fn prices_keep_two_decimals_exactly(backend: DatabaseKind) {
    let mut service = spawn_product_service(backend).await;
    for price in [0.0, 0.01, 0.1, 19.99, 29.99, 1234567.89, 10_000_000.0] {
        let created = service.create("Priced", price, 1, "Misc").await;
        assert_eq!(created.price, price);
        let fetched = service.client.get_product(GetProductRequest { id: created.id }).await.expect("get");
        assert_eq!(fetched.get_ref().price, price, "stored as cents, shown unchanged");
    }
}

async fn invalid_input_names_the_field(backend: DatabaseKind) {
    let mut service = spawn_product_service(backend).await;
    for (request, field) in [
        (product(" ", 1.0, 1, "Misc"), "name: "),
        (product("Thing", -0.01, 1, "Misc"), "price: "),
        (product("Thing", 1.005, 1, "Misc"), "price: "),
        (product("Thing", f64::NAN, 1, "Misc"), "price: "),
        (product("Thing", 10_000_000.01, 1, "Misc"), "price: "),
        (product("Thing", 1.0, -1, "Misc"), "stock: "),
        (product("Thing", 1.0, 1, ""), "category: "),
    ] {
        assert_status(service.client.create_product(request).await, Code::InvalidArgument, field);
    }
    let thing = service.create("Thing", 1.0, 1, "Misc").await;
    for (update, field) in [
        (UpdateProductRequest { id: thing.id.clone(), stock: Some(-5), ..Default::default() }, "stock: "),
        (UpdateProductRequest { id: thing.id.clone(), price: Some(0.123), ..Default::default() }, "price: "),
        (UpdateProductRequest { id: thing.id.clone(), name: Some(String::new()), ..Default::default() }, "name: "),
        (UpdateProductRequest { id: "x".into(), ..Default::default() }, "id: "),
    ] {
        assert_status(service.client.update_product(update).await, Code::InvalidArgument, field);
    }
    let unchanged = service.client.get_product(GetProductRequest { id: thing.id }).await.expect("get").into_inner();
    assert_eq!((unchanged.stock, unchanged.price), (1, 1.0), "a rejected update changes nothing");
}

async fn products_are_paged_by_category_in_creation_order(backend: DatabaseKind) {
    let mut service = spawn_product_service(backend).await;
    let mut books = Vec::new();
    for n in 0..5 {
        books.push(service.create(&format!("Book {n}"), 10.0, 1, "Books").await.id);
        service.create(&format!("Gadget {n}"), 20.0, 1, "Electronics").await;
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let (products, total) = list(&mut service, page, 2, Some("Books")).await;
        assert_eq!(total, 5);
        assert!(products.iter().all(|product| product.category == "Books"));
        seen.extend(products.into_iter().map(|product| product.id));
    }
    assert_eq!(seen, books, "pages are disjoint and in creation order");
    let (all, total) = list(&mut service, 1, 100, None).await;
    assert_eq!((all.len(), total), (10, 10));
    let (all_again, _) = list(&mut service, 1, 100, Some("")).await;
    assert_eq!(all_again, all, "an empty category means all, in the same order");
    let (none, total) = list(&mut service, 1, 10, Some("Garden")).await;
    assert_eq!((none.len(), total), (0, 0));
    for (page, limit, field) in [(0, 10, "page: "), (1, 0, "limit: "), (1, 101, "limit: ")] {
        let request = GetProductsRequest { page: Some(page), limit: Some(limit), category: None, count_total: None };
        assert_status(service.client.get_products(request).await, Code::InvalidArgument, field);
    }
}

async fn batch_get_returns_the_products_that_exist(backend: DatabaseKind) {
    let mut service = spawn_product_service(backend).await;
    let pen = service.create("Pen", 1.5, 10, "Office").await;
    let ids = vec![pen.id.clone(), uuid::Uuid::now_v7().to_string(), pen.id.clone()];
    let found = service.client.get_products_by_ids(GetProductsByIdsRequest { ids }).await.expect("batch");
    assert_eq!(found.into_inner().products, vec![pen]);
    let bad = GetProductsByIdsRequest { ids: vec![String::new()] };
    assert_status(service.client.get_products_by_ids(bad).await, Code::InvalidArgument, "ids[0]: ");
}

async fn data_survives_a_restart(backend: DatabaseKind) {
    let mut service = spawn_product_service(backend).await;
    let pen = service.create("Pen", 1.5, 10, "Office").await;
    let mut service = service.restart().await;
    let fetched = service.client.get_product(GetProductRequest { id: pen.id.clone() }).await.expect("get");
    assert_eq!(fetched.into_inner(), pen);
}

async fn health_and_reflection(backend: DatabaseKind) {
    let service = spawn_product_service(backend).await;
    assert_eq!(product_service::SERVICE_NAME, "product.ProductService");
    test_support::grpc::assert_health_and_reflection(&service.server.url(), product_service::SERVICE_NAME).await;
}

async fn list(service: &mut TestProductService, page: i32, limit: i32, category: Option<&str>) -> (Vec<Product>, i32) {
    let request = GetProductsRequest {
        page: Some(page),
        limit: Some(limit),
        category: category.map(Into::into),
        count_total: None,
    };
    let response = service.client.get_products(request).await.expect("list").into_inner();
    assert_eq!((response.page, response.limit), (page, limit));
    (response.products, response.total.expect("counted when not asked otherwise"))
}
