# syntax=docker/dockerfile:1
# cloakroom: one image, four commands (bff, auth-server, resource-server, demo).

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
    && install -m 0755 target/release/cloakroom /usr/local/bin/cloakroom \
    && mkdir -p static templates

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin cloakroom
COPY --from=builder /usr/local/bin/cloakroom /usr/local/bin/cloakroom
# Templates are compiled into the binary; static/ and templates/ are copied as well so that a
# program that reads them relative to its working directory finds them.
WORKDIR /usr/share/cloakroom
COPY --from=builder /src/static ./static
COPY --from=builder /src/templates ./templates
USER cloakroom:cloakroom
EXPOSE 8080 8081 8082
ENTRYPOINT ["cloakroom"]
CMD ["--help"]
