//! Tokens and who is asking: `login` issues an HS256 JWT; every request's `Authorization:
//! Bearer` header becomes [`Credentials`] for the resolvers to check.

use std::time::Duration;

use async_graphql::{Context, Error};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use proto::user::Role;

use crate::errors;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id.
    sub: String,
    /// A signed token with a role that is none of the known is not valid.
    role: Role,
    iat: i64,
    exp: i64,
}

/// Issues and checks tokens.
#[derive(Clone)]
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: String,
    pub role: Role,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// What a request's `Authorization` header amounted to.
#[derive(Debug, Clone)]
pub enum Credentials {
    Anonymous,
    Valid(Viewer),
    /// A token was sent but is no good; the reason is safe to show.
    Invalid(&'static str),
}

impl Auth {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation, ttl }
    }

    /// A token for `user_id` with `role`, and when it expires (Unix seconds).
    pub fn issue(&self, user_id: &str, role: Role) -> anyhow::Result<(String, i64)> {
        let now = chrono::Utc::now().timestamp();
        let exp = now + i64::try_from(self.ttl.as_secs())?;
        let claims = Claims { sub: user_id.to_owned(), role, iat: now, exp };
        Ok((jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?, exp))
    }

    /// Reads an `Authorization` header value.
    pub fn credentials(&self, header: Option<&str>) -> Credentials {
        let Some(header) = header.map(str::trim).filter(|header| !header.is_empty()) else {
            return Credentials::Anonymous;
        };
        let Some(token) = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")) else {
            return Credentials::Invalid("the Authorization header must be `Bearer <token>`");
        };
        match jsonwebtoken::decode::<Claims>(token.trim(), &self.decoding, &self.validation) {
            Ok(data) => Credentials::Valid(Viewer { user_id: data.claims.sub, role: data.claims.role }),
            Err(error) if matches!(error.kind(), ErrorKind::ExpiredSignature) => {
                Credentials::Invalid("the token has expired")
            }
            Err(_) => Credentials::Invalid("the token is not valid"),
        }
    }
}

/// The caller, or `UNAUTHENTICATED`.
pub fn viewer<'a>(ctx: &Context<'a>) -> Result<&'a Viewer, Error> {
    match ctx.data_opt::<Credentials>() {
        Some(Credentials::Valid(viewer)) => Ok(viewer),
        Some(Credentials::Invalid(reason)) => Err(errors::unauthenticated(reason)),
        _ => Err(errors::unauthenticated(
            "this operation needs a token: log in and send `Authorization: Bearer <token>`",
        )),
    }
}

/// The caller if an admin, else `FORBIDDEN` (or `UNAUTHENTICATED` without a token).
pub fn admin<'a>(ctx: &Context<'a>) -> Result<&'a Viewer, Error> {
    let viewer = viewer(ctx)?;
    if viewer.is_admin() { Ok(viewer) } else { Err(errors::forbidden("this operation needs the admin role")) }
}

/// The caller if it is `user_id` or an admin, else `FORBIDDEN`.
pub fn self_or_admin<'a>(ctx: &Context<'a>, user_id: &str) -> Result<&'a Viewer, Error> {
    let viewer = viewer(ctx)?;
    if viewer.is_admin() || viewer.user_id == user_id {
        Ok(viewer)
    } else {
        Err(errors::forbidden("you may only act on your own account and orders"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_tokens_verify_and_carry_the_role() {
        let auth = Auth::new(SECRET, Duration::from_secs(60));
        let (token, _) = auth.issue("user-1", Role::Admin).expect("issue");
        let credentials = auth.credentials(Some(&format!("Bearer {token}")));
        assert!(matches!(credentials, Credentials::Valid(Viewer { ref user_id, .. }) if user_id == "user-1"));
    }

    #[test]
    fn bad_tokens_are_invalid_with_a_reason() {
        let auth = Auth::new(SECRET, Duration::from_secs(60));
        let other = Auth::new(b"another-secret-another-secret-xx", Duration::from_secs(60));
        let (forged, _) = other.issue("user-1", Role::Admin).expect("issue");
        let expired = Auth::new(SECRET, Duration::ZERO).issue("user-1", Role::User).expect("issue").0;
        std::thread::sleep(Duration::from_millis(1100));
        for (header, reason) in [
            (format!("Bearer {forged}"), "the token is not valid"),
            (format!("Bearer {expired}"), "the token has expired"),
            ("Basic abc".to_owned(), "the Authorization header must be `Bearer <token>`"),
        ] {
            assert!(matches!(auth.credentials(Some(&header)), Credentials::Invalid(r) if r == reason), "{header}");
        }
        assert!(matches!(auth.credentials(None), Credentials::Anonymous));
    }
}
