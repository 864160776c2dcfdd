# cloakroom: one image, four commands (bff, auth-server, resource-server, demo).
# Build: docker build -t cloakroom:local .   (README "Docker")

FROM rust:1-bookworm AS builder
WORKDIR /src

# Dependencies first, in their own layer: build them against placeholder sources, so that this
# layer is rebuilt only when Cargo.toml or Cargo.lock change and an edit under src/ recompiles
# only cloakroom itself (plus the release profile's link-time optimisation).
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches/bench \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cp src/main.rs benches/bench/main.rs \
    && cargo build --release --locked \
    && rm -rf src

# The real sources. Templates and static files are compiled into the binary. The touch makes
# cargo see them as newer than the placeholders, whatever times the build context carries.
COPY src ./src
COPY templates ./templates
COPY static ./static
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && install -m 0755 target/release/cloakroom /usr/local/bin/cloakroom

# The runtime: Debian slim, the binary and the health check; no compiler, no package manager
# run (TLS roots are compiled in: webpki-roots), no root.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin cloakroom
COPY --from=builder /usr/local/bin/cloakroom /usr/local/bin/cloakroom
COPY scripts/healthcheck.sh /usr/local/bin/cloakroom-healthcheck
# The single-page demo's files, for a BFF configured with a frontend `dir` (docker-compose.yml);
# `cloakroom demo` carries its own copy in the binary.
COPY static /usr/share/cloakroom/static
# In a container the servers listen on every interface (the container's own network namespace),
# so that published ports reach them; each can still be overridden.
ENV CLOAKROOM_BFF__LISTEN=0.0.0.0:8080 \
    CLOAKROOM_AUTH_SERVER__LISTEN=0.0.0.0:8081 \
    CLOAKROOM_RESOURCE_SERVER__LISTEN=0.0.0.0:8082
USER cloakroom:cloakroom
EXPOSE 8080 8081 8082
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["cloakroom-healthcheck"]
ENTRYPOINT ["cloakroom"]
CMD ["--help"]
