# One image per service, chosen by the SERVICE build argument:
#   docker build --build-arg SERVICE=user-service -t nest-microservices/user-service:0.1.0 .
# `docker compose build` builds all four. The build stage does not depend on SERVICE: it
# compiles the four binaries at once with the same `cargo build` that `cargo xtask start` and
# `cargo xtask test` run (deploy/tests checks they do not drift), in release mode, so the four
# images share one build instead of compiling the workspace four times. The run step is the
# binary with its configuration in the environment, and the health check is the binary's own
# `--health-check`, which the test suite exercises. No `# syntax` line: the builder's own
# Dockerfile frontend reads this file, so nothing is fetched from an image registry for it.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# cargo-chef splits the build so that compiling the dependencies is a layer of its own,
# rebuilt only when Cargo.toml or Cargo.lock change, not on every source edit.
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --locked --release --recipe-path recipe.json --bin user-service --bin product-service --bin order-service --bin api-gateway
COPY . .
# GraphiQL's files, fetched from the npm registry (no-op when the build context has them), so
# the gateway embeds them and its GraphiQL page works without internet access.
RUN cargo run --locked --quiet --package xtask -- graphiql-assets
RUN cargo build --locked --release --bin user-service --bin product-service --bin order-service --bin api-gateway \
    && install -D --target-directory /out \
        target/release/user-service target/release/product-service target/release/order-service target/release/api-gateway

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "set --build-arg SERVICE=<api-gateway|user-service|product-service|order-service>" >&2; exit 1; }
# A fixed, unprivileged user that owns nothing but the data directory. Not a `--system`
# account: those are numbered below 1000, and asking for 10001 made useradd warn.
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app \
    && install -d -o app -g app -m 0750 /data
COPY --from=build /out/${SERVICE} /usr/local/bin/${SERVICE}
# The entry point and the health check have one name whatever the service is.
RUN ln -s "/usr/local/bin/${SERVICE}" /usr/local/bin/service
USER 10001:10001
ENV DATA_DIR=/data \
    LOG_FORMAT=json \
    RUST_LOG=info
VOLUME ["/data"]
# No EXPOSE: the port is a runtime setting (LISTEN_ADDR), which Compose and Kubernetes set
# and publish; the image alone cannot know it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["/usr/local/bin/service", "--health-check"]
ENTRYPOINT ["/usr/local/bin/service"]
