# syntax=docker/dockerfile:1
# pacer's container image: built with cargo, run from distroless as a non-root user.
#
#   docker build -t pacer:0.1.0 .
#   docker run --rm -p 8080:8080 -v "$PWD/pacer.yaml:/etc/pacer/pacer.yaml:ro" pacer:0.1.0
#
# The tag is pacer's version (Cargo.toml), which is what the Helm chart in helm/pacer runs by
# default (image.repository pacer, image.tag the chart's appVersion). In a container, pacer.yaml
# must say `listen: 0.0.0.0:8080` (loopback is unreachable from outside the container); the
# chart sets that itself.

ARG RUST_VERSION=1
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Only what the build reads (.dockerignore admits nothing else), so edits elsewhere keep the
# layer cache. The cache mounts keep the registry and compiled dependencies between builds.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pacer \
    && install -D -m 0755 target/release/pacer /out/pacer

# glibc and libgcc (what a Rust binary links against), CA roots, and a nonroot user (65532); no
# shell or package manager. The chart's securityContext assumes this user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/pacer /usr/local/bin/pacer
USER 65532:65532
# The proxy and the admin listener (/healthz, /readyz, /metrics), as the chart configures them.
EXPOSE 8080 9091
ENTRYPOINT ["/usr/local/bin/pacer"]
CMD ["proxy", "--config", "/etc/pacer/pacer.yaml"]
