//! The order status machine: PENDING → CONFIRMED → SHIPPED → DELIVERED, and PENDING or
//! CONFIRMED → CANCELLED. DELIVERED and CANCELLED are final.

use std::fmt;

use service_runtime::{ServiceError, ServiceResult};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    /// Every status, in life order.
    pub const ALL: [Self; 5] = [Self::Pending, Self::Confirmed, Self::Shipped, Self::Delivered, Self::Cancelled];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Shipped => "SHIPPED",
            Self::Delivered => "DELIVERED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Parses a client's status; unknown names are `INVALID_ARGUMENT` on `field`.
    pub fn parse(field: &str, value: &str) -> ServiceResult<Self> {
        let value = value.trim().to_ascii_uppercase();
        Self::ALL.into_iter().find(|status| status.as_str() == value).ok_or_else(|| {
            let names = Self::ALL.map(Self::as_str).join(", ");
            ServiceError::invalid(field, format!("must be one of {names}"))
        })
    }

    /// The statuses from which an order may move to `self`.
    pub fn predecessors(self) -> &'static [Self] {
        match self {
            Self::Pending => &[],
            Self::Confirmed => &[Self::Pending],
            Self::Shipped => &[Self::Confirmed],
            Self::Delivered => &[Self::Shipped],
            Self::Cancelled => &[Self::Pending, Self::Confirmed],
        }
    }

    /// True when the machine allows `self` → `next`.
    pub fn can_become(self, next: Self) -> bool {
        next.predecessors().contains(&self)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::{self, *};

    #[test]
    fn the_machine_allows_exactly_the_specified_transitions() {
        let allowed = [
            (Pending, Confirmed),
            (Confirmed, Shipped),
            (Shipped, Delivered),
            (Pending, Cancelled),
            (Confirmed, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(from.can_become(to), allowed.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn parsing_is_case_insensitive_and_names_the_field() {
        assert_eq!(OrderStatus::parse("status", " shipped ").ok(), Some(Shipped));
        let error = OrderStatus::parse("status", "LOST").expect_err("unknown");
        assert!(error.to_string().starts_with("status: must be one of PENDING"), "{error}");
    }
}
