//! The `product.ProductService` gRPC handlers: validate, call the repository, map to the contract.

use proto::product::{
    CreateProductRequest, DeleteProductRequest, DeleteProductResponse, GetProductRequest, GetProductsByIdsRequest,
    GetProductsByIdsResponse, GetProductsRequest, GetProductsResponse, Product, UpdateProductRequest,
    product_service_server::ProductService,
};
use service_runtime::{
    ServiceError, ServiceResult,
    error::reply,
    paging::{PageRequest, total_to_i32},
    time, validate,
};
use tonic::{Request, Response, Status};

use crate::{
    repository::{NewProduct, ProductChanges, ProductRecord, ProductRepository},
    validation,
};

/// Implements `product.ProductService`.
#[derive(Debug, Clone)]
pub struct ProductApi {
    products: ProductRepository,
}

impl ProductApi {
    pub fn new(products: ProductRepository) -> Self {
        Self { products }
    }

    async fn create(&self, request: CreateProductRequest) -> ServiceResult<Product> {
        let product = NewProduct {
            name: validation::name(&request.name)?,
            description: validation::description(&request.description)?,
            price_cents: validation::price(request.price)?,
            stock: validation::stock(request.stock)?,
            category: validation::category(&request.category)?,
        };
        let product = self.products.insert(product).await?;
        tracing::info!(product_id = %product.id, "product created");
        Ok(to_proto(product))
    }

    async fn get(&self, request: GetProductRequest) -> ServiceResult<Product> {
        let id = validate::id("id", &request.id)?;
        self.products.find(&id).await?.map(to_proto).ok_or_else(|| ServiceError::not_found("product", id))
    }

    async fn update(&self, request: UpdateProductRequest) -> ServiceResult<Product> {
        let id = validate::id("id", &request.id)?;
        let changes = ProductChanges {
            name: request.name.as_deref().map(validation::name).transpose()?,
            description: request.description.as_deref().map(validation::description).transpose()?,
            price_cents: request.price.map(validation::price).transpose()?,
            stock: request.stock.map(validation::stock).transpose()?,
            category: request.category.as_deref().map(validation::category).transpose()?,
        };
        let product = self.products.update(&id, changes).await?;
        product.map(to_proto).ok_or_else(|| ServiceError::not_found("product", id))
    }

    async fn delete(&self, request: DeleteProductRequest) -> ServiceResult<DeleteProductResponse> {
        let id = validate::id("id", &request.id)?;
        if !self.products.delete(&id).await? {
            return Err(ServiceError::not_found("product", id));
        }
        tracing::info!(product_id = %id, "product deleted");
        Ok(DeleteProductResponse { success: true, message: format!("product {id} deleted") })
    }

    async fn list(&self, request: GetProductsRequest) -> ServiceResult<GetProductsResponse> {
        let page = PageRequest::new(request.page, request.limit, request.count_total)?;
        // An empty category means "all", as the original's optional argument did.
        let category = match request.category.as_deref().map(str::trim) {
            Some("") | None => None,
            Some(category) => Some(validation::category(category)?),
        };
        let (products, total) = self.products.list(page, category.as_deref()).await?;
        Ok(GetProductsResponse {
            products: products.into_iter().map(to_proto).collect(),
            total: total_to_i32(total),
            page: page.page,
            limit: page.limit,
        })
    }

    async fn get_many(&self, request: GetProductsByIdsRequest) -> ServiceResult<GetProductsByIdsResponse> {
        let ids = validate::id_batch("ids", &request.ids)?;
        let products = self.products.find_many(&ids).await?;
        Ok(GetProductsByIdsResponse { products: products.into_iter().map(to_proto).collect() })
    }
}

#[tonic::async_trait]
impl ProductService for ProductApi {
    async fn create_product(&self, request: Request<CreateProductRequest>) -> Result<Response<Product>, Status> {
        reply(self.create(request.into_inner()).await)
    }

    async fn get_product(&self, request: Request<GetProductRequest>) -> Result<Response<Product>, Status> {
        reply(self.get(request.into_inner()).await)
    }

    async fn update_product(&self, request: Request<UpdateProductRequest>) -> Result<Response<Product>, Status> {
        reply(self.update(request.into_inner()).await)
    }

    async fn delete_product(
        &self,
        request: Request<DeleteProductRequest>,
    ) -> Result<Response<DeleteProductResponse>, Status> {
        reply(self.delete(request.into_inner()).await)
    }

    async fn get_products(
        &self,
        request: Request<GetProductsRequest>,
    ) -> Result<Response<GetProductsResponse>, Status> {
        reply(self.list(request.into_inner()).await)
    }

    async fn get_products_by_ids(
        &self,
        request: Request<GetProductsByIdsRequest>,
    ) -> Result<Response<GetProductsByIdsResponse>, Status> {
        reply(self.get_many(request.into_inner()).await)
    }
}

fn to_proto(product: ProductRecord) -> Product {
    Product {
        id: product.id,
        name: product.name,
        description: product.description,
        price: validate::cents_to_money(product.price_cents),
        // Stock only ever comes in as an int32 and never grows past what was set.
        stock: i32::try_from(product.stock).unwrap_or(i32::MAX),
        category: product.category,
        created_at: time::to_rfc3339(product.created_at),
        updated_at: time::to_rfc3339(product.updated_at),
    }
}
