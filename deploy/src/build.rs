//! How the service binaries are built. One definition for `cargo xtask start`, `cargo xtask
//! test` and the Dockerfile (a test checks the Dockerfile runs exactly this).

/// The service binaries, in the order they start.
pub const SERVICES: [&str; 4] = ["user-service", "product-service", "order-service", "api-gateway"];

/// The arguments to `cargo` that build `bins` (with the lock file as committed).
pub fn cargo_build_args(release: bool, bins: &[&str]) -> Vec<String> {
    let mut args = vec!["build".to_owned(), "--locked".to_owned()];
    if release {
        args.push("--release".to_owned());
    }
    for bin in bins {
        args.push("--bin".to_owned());
        args.push((*bin).to_owned());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_builds_name_each_binary() {
        assert_eq!(cargo_build_args(true, &["user-service"]).join(" "), "build --locked --release --bin user-service");
        assert_eq!(cargo_build_args(false, &["a", "b"]).join(" "), "build --locked --bin a --bin b");
    }
}
