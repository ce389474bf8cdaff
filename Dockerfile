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

# One build for the four binaries. The cargo registry and the target directory are BuildKit
# cache mounts, kept by the builder between builds: after a source edit only the workspace's own
# crates compile again, as they would on a laptop, with no tool to install first (cargo-chef
# cost 70 s of every cold build here, and its dependency layer rebuilt everything on any change
# to Cargo.lock). `sharing=locked`: Compose builds the four images at once, and they take turns
# on one target directory instead of each compiling into a copy. The binaries are copied out of
# the mount in the same step, since the mount is not part of the image.
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
# GraphiQL's files, fetched from the npm registry (no-op when the build context has them), so
# the gateway embeds them and its GraphiQL page works without internet access.
RUN --mount=type=cache,id=nest-microservices-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=nest-microservices-target,target=/src/target,sharing=locked \
    cargo run --locked --quiet --package xtask -- graphiql-assets
# OpenSSL (librdkafka's TLS) is the build image's own (libssl-dev), linked statically: the
# runtime image has no libssl, and building OpenSSL from source instead cost every cold build
# about two minutes. The variables name its static libraries directly; found through
# pkg-config, libraries in system directories are always linked dynamically.
RUN --mount=type=cache,id=nest-microservices-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=nest-microservices-target,target=/src/target,sharing=locked \
    OPENSSL_STATIC=1 OPENSSL_LIB_DIR="/usr/lib/$(gcc -print-multiarch)" OPENSSL_INCLUDE_DIR=/usr/include \
    cargo build --locked --release --bin user-service --bin product-service --bin order-service --bin api-gateway \
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
