//! What the read scenarios check in each answer: every entity asked for is there, with its id
//! or name as a string. Read with [`crate::graphql::data_as`], borrowing the answer's strings.
//!
//! The fields are read only by deserialising into them: an answer without one fails to read.
#![allow(dead_code, reason = "the fields are checked by deserialising into them, not read after")]

use std::borrow::Cow;

use serde::Deserialize;

#[derive(Deserialize)]
pub struct ProductAnswer<'a> {
    #[serde(borrow)]
    product: Identified<'a>,
}

#[derive(Deserialize)]
pub struct ProductsAnswer<'a> {
    #[serde(borrow)]
    pub products: Vec<Identified<'a>>,
}

#[derive(Deserialize)]
pub struct UserAnswer<'a> {
    #[serde(borrow)]
    user: Identified<'a>,
}

#[derive(Deserialize)]
pub struct UserOrdersAnswer<'a> {
    #[serde(rename = "userOrders", borrow)]
    pub user_orders: Vec<OrderAnswer<'a>>,
}

#[derive(Deserialize)]
pub struct OrderAnswer<'a> {
    #[serde(borrow)]
    items: Vec<ItemAnswer<'a>>,
    #[serde(borrow)]
    user: Named<'a>,
}

#[derive(Deserialize)]
pub struct ItemAnswer<'a> {
    #[serde(borrow)]
    product: Named<'a>,
}

#[derive(Deserialize)]
pub struct Identified<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
pub struct Named<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}
