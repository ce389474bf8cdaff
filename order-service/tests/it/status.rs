//! `UpdateOrderStatus` follows the status machine, atomically.

use futures::future::join_all;
use proto::order::UpdateOrderStatusRequest;
use test_support::{DatabaseKind, backend_tests, grpc::assert_status};
use tonic::Code;

use crate::helpers::spawn_order_system;

backend_tests!(orders_move_through_the_machine, illegal_transitions_are_refused, concurrent_changes_apply_once);

fn change(id: &str, status: &str) -> UpdateOrderStatusRequest {
    UpdateOrderStatusRequest { id: id.into(), status: status.into() }
}

async fn orders_move_through_the_machine(backend: DatabaseKind) {
    let mut system = spawn_order_system(backend).await;
    let buyer = system.user("buyer@example.com").await;
    let pen = system.product(1.0, 10).await;
    let order = system.order(&buyer, &[(&pen, 1)]).await;
    for next in ["CONFIRMED", "SHIPPED", "DELIVERED"] {
        let updated = system.orders.update_order_status(change(&order.id, next)).await.expect(next).into_inner();
        assert_eq!(updated.status, next);
        assert_eq!((updated.items.len(), updated.created_at.as_str()), (1, order.created_at.as_str()));
    }
    for cancellable in ["PENDING", "CONFIRMED"] {
        let order = system.order(&buyer, &[(&pen, 1)]).await;
        if cancellable == "CONFIRMED" {
            system.orders.update_order_status(change(&order.id, "confirmed")).await.expect("confirm");
        }
        let cancelled = system.orders.update_order_status(change(&order.id, "CANCELLED")).await.expect("cancel");
        assert_eq!(cancelled.get_ref().status, "CANCELLED", "from {cancellable}");
    }
}

async fn illegal_transitions_are_refused(backend: DatabaseKind) {
    let mut system = spawn_order_system(backend).await;
    let buyer = system.user("buyer@example.com").await;
    let pen = system.product(1.0, 10).await;
    let order = system.order(&buyer, &[(&pen, 1)]).await;
    for illegal in ["SHIPPED", "DELIVERED", "PENDING"] {
        assert_status(
            system.orders.update_order_status(change(&order.id, illegal)).await,
            Code::FailedPrecondition,
            "status: ",
        );
    }
    system.orders.update_order_status(change(&order.id, "CANCELLED")).await.expect("cancel");
    for after_cancel in ["CONFIRMED", "CANCELLED", "PENDING"] {
        let result = system.orders.update_order_status(change(&order.id, after_cancel)).await;
        assert_status(result, Code::FailedPrecondition, "status: ");
    }
    assert_status(
        system.orders.update_order_status(change(&order.id, "LOST")).await,
        Code::InvalidArgument,
        "status: ",
    );
    let ghost = uuid::Uuid::now_v7().to_string();
    assert_status(system.orders.update_order_status(change(&ghost, "CONFIRMED")).await, Code::NotFound, "order ");
    assert_status(system.orders.update_order_status(change("x", "CONFIRMED")).await, Code::InvalidArgument, "id: ");
}

async fn concurrent_changes_apply_once(backend: DatabaseKind) {
    let mut system = spawn_order_system(backend).await;
    let buyer = system.user("buyer@example.com").await;
    let pen = system.product(1.0, 10).await;
    let order = system.order(&buyer, &[(&pen, 1)]).await;
    system.orders.update_order_status(change(&order.id, "CONFIRMED")).await.expect("confirm");
    // Ten clients ship at once and ten cancel at once; exactly one of the twenty may win.
    let attempts = (0..20).map(|n| {
        let mut client = system.orders.clone();
        let request = change(&order.id, if n % 2 == 0 { "SHIPPED" } else { "CANCELLED" });
        async move { client.update_order_status(request).await }
    });
    let results = join_all(attempts).await;
    let winners: Vec<_> = results.iter().filter_map(|result| result.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter(|result| result.is_err())
            .all(|result| { result.as_ref().is_err_and(|status| status.code() == Code::FailedPrecondition) })
    );
}
