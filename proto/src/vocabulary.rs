//! The names the contracts carry as strings — order statuses and roles — as types, defined once
//! for every service and client. Each is parsed where it comes in (a request, an event, a row,
//! a token) and written back as the same upper-case name.

use std::{fmt, str::FromStr};

/// Where an order is in its life, and the machine it moves through: PENDING → CONFIRMED →
/// SHIPPED → DELIVERED, and PENDING or CONFIRMED → CANCELLED. DELIVERED and CANCELLED are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
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

    /// The name stored, sent and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Shipped => "SHIPPED",
            Self::Delivered => "DELIVERED",
            Self::Cancelled => "CANCELLED",
        }
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

    /// True for the two outcomes of the order saga: CONFIRMED and CANCELLED.
    pub fn is_settled(self) -> bool {
        matches!(self, Self::Confirmed | Self::Cancelled)
    }
}

/// The roles an account has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Self; 2] = [Self::User, Self::Admin];

    /// The name stored, sent and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Admin => "ADMIN",
        }
    }
}

/// A name that is none of a vocabulary's: says which names there are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of {expected}, not `{given}`")]
pub struct UnknownName {
    pub given: String,
    pub expected: String,
}

/// Parsing, display and row conversion, the same for each vocabulary.
macro_rules! named {
    ($type:ty) => {
        impl FromStr for $type {
            type Err = UnknownName;

            /// Reads a name, ignoring case and surrounding spaces.
            fn from_str(text: &str) -> Result<Self, UnknownName> {
                let wanted = text.trim();
                Self::ALL.into_iter().find(|value| value.as_str().eq_ignore_ascii_case(wanted)).ok_or_else(|| {
                    UnknownName { given: text.to_owned(), expected: Self::ALL.map(Self::as_str).join(", ") }
                })
            }
        }

        impl TryFrom<String> for $type {
            type Error = UnknownName;

            fn try_from(text: String) -> Result<Self, UnknownName> {
                text.parse()
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
named!(OrderStatus);
named!(Role);

#[cfg(test)]
mod tests {
    use super::OrderStatus::{self, *};
    use super::Role;

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
    fn names_parse_in_any_case_and_unknown_ones_list_the_known() {
        assert_eq!(" cancelled ".parse::<OrderStatus>(), Ok(Cancelled));
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        let error = "LOST".parse::<OrderStatus>().expect_err("unknown");
        assert_eq!(error.to_string(), "must be one of PENDING, CONFIRMED, SHIPPED, DELIVERED, CANCELLED, not `LOST`");
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse::<OrderStatus>(), Ok(status));
            let json = serde_json::to_string(&status).expect("serialize");
            assert_eq!(json, format!("\"{status}\""));
            assert_eq!(serde_json::from_str::<OrderStatus>(&json).expect("deserialize"), status);
        }
    }
}
