//! The `order.OrderService` gRPC handlers: validate, consult the peers, store, map to the contract.

use proto::order::{
    CreateOrderRequest, GetOrderRequest, GetOrdersRequest, GetOrdersResponse, GetUserOrdersRequest, Order, OrderItem,
    UpdateOrderStatusRequest, order_service_server::OrderService,
};
use service_runtime::{
    ServiceError, ServiceResult,
    error::reply,
    paging::{PageRequest, total_to_i32},
    time, validate,
};
use tonic::{Request, Response, Status};

use crate::{
    backlog::Backlog,
    peers::Peers,
    pricing,
    repository::{OrderRecord, OrderRepository, Transition},
    status,
};

/// Implements `order.OrderService`.
#[derive(Debug, Clone)]
pub struct OrderApi {
    orders: OrderRepository,
    peers: Peers,
    backlog: Backlog,
}

impl OrderApi {
    pub fn new(orders: OrderRepository, peers: Peers, backlog: Backlog) -> Self {
        Self { orders, peers, backlog }
    }

    async fn create(&self, request: CreateOrderRequest) -> ServiceResult<Order> {
        let draft = pricing::draft(&request)?;
        // Refused before any peer is asked: an overloaded saga should cost as little as possible.
        let admission = self.backlog.admit()?;
        let product_ids = draft.items.iter().map(|item| item.product_id.clone()).collect();
        // The two peers are independent; ask both at once.
        let (user_exists, catalog) =
            tokio::try_join!(self.peers.user_exists(&draft.user_id), self.peers.products(product_ids))?;
        if !user_exists {
            return Err(ServiceError::invalid("userId", format!("user {} does not exist", draft.user_id)));
        }
        let order = self.orders.insert(pricing::price(draft, &catalog)?).await?;
        admission.accepted();
        tracing::info!(order_id = %order.id, user_id = %order.user_id, total_cents = order.total_cents, "order created");
        Ok(to_proto(order))
    }

    async fn get(&self, request: GetOrderRequest) -> ServiceResult<Order> {
        let id = validate::id("id", &request.id)?;
        self.orders.find(&id).await?.map(to_proto).ok_or_else(|| ServiceError::not_found("order", id))
    }

    async fn update_status(&self, request: UpdateOrderStatusRequest) -> ServiceResult<Order> {
        let id = validate::id("id", &request.id)?;
        let next = status::parse("status", &request.status)?;
        match self.orders.transition(&id, next).await? {
            Transition::Applied(order) => {
                tracing::info!(order_id = %order.id, status = %next, "order status changed");
                Ok(to_proto(order))
            }
            Transition::Refused { current } => Err(ServiceError::FailedPrecondition(format!(
                "status: order {id} is {current} and cannot become {next}"
            ))),
            Transition::NotFound => Err(ServiceError::not_found("order", id)),
        }
    }

    async fn list(&self, request: GetOrdersRequest) -> ServiceResult<GetOrdersResponse> {
        let page = PageRequest::new(request.page, request.limit, request.count_total)?;
        let (orders, total) = self.orders.list(page).await?;
        Ok(page_response(orders, total, page))
    }

    async fn list_for_user(&self, request: GetUserOrdersRequest) -> ServiceResult<GetOrdersResponse> {
        let user_id = validate::id("userId", &request.user_id)?;
        let page = PageRequest::new(request.page, request.limit, request.count_total)?;
        let (orders, total) = self.orders.list_for_user(&user_id, page).await?;
        Ok(page_response(orders, total, page))
    }
}

#[tonic::async_trait]
impl OrderService for OrderApi {
    async fn create_order(&self, request: Request<CreateOrderRequest>) -> Result<Response<Order>, Status> {
        reply(self.create(request.into_inner()).await)
    }

    async fn get_order(&self, request: Request<GetOrderRequest>) -> Result<Response<Order>, Status> {
        reply(self.get(request.into_inner()).await)
    }

    async fn update_order_status(&self, request: Request<UpdateOrderStatusRequest>) -> Result<Response<Order>, Status> {
        reply(self.update_status(request.into_inner()).await)
    }

    async fn get_orders(&self, request: Request<GetOrdersRequest>) -> Result<Response<GetOrdersResponse>, Status> {
        reply(self.list(request.into_inner()).await)
    }

    async fn get_user_orders(
        &self,
        request: Request<GetUserOrdersRequest>,
    ) -> Result<Response<GetOrdersResponse>, Status> {
        reply(self.list_for_user(request.into_inner()).await)
    }
}

fn page_response(orders: Vec<OrderRecord>, total: Option<i64>, page: PageRequest) -> GetOrdersResponse {
    GetOrdersResponse {
        orders: orders.into_iter().map(to_proto).collect(),
        total: total_to_i32(total),
        page: page.page,
        limit: page.limit,
    }
}

fn to_proto(order: OrderRecord) -> Order {
    Order {
        id: order.id,
        user_id: order.user_id,
        items: order
            .items
            .into_iter()
            .map(|item| OrderItem {
                product_id: item.product_id,
                // Quantities are stored from validated int32s.
                quantity: i32::try_from(item.quantity).unwrap_or(i32::MAX),
                price: Some(validate::cents_to_money(item.unit_price_cents)),
            })
            .collect(),
        total_amount: validate::cents_to_money(order.total_cents),
        status: order.status.to_string(),
        status_reason: order.status_reason.unwrap_or_default(),
        created_at: time::to_rfc3339(order.created_at),
        updated_at: time::to_rfc3339(order.updated_at),
    }
}
