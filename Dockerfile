# Herald: a small runtime image running as a non-root user.
# Build: docker build -t herald .
# Run:   docker run -p 6001:6001 herald   (development app; configure apps with HERALD__APPS__… variables)

# The live offers page (optional static files), built from its npm package.
FROM node:20-bookworm-slim AS offers
WORKDIR /src/client-js/offers
COPY client-js/offers/package.json client-js/offers/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY client-js/offers/ ./
RUN npm run build

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY bench/Cargo.toml bench/Cargo.toml
COPY src src
COPY bench/src bench/src
COPY tests tests
COPY deploy/herald.example.toml deploy/herald.example.toml
RUN cargo build --release --locked --bin herald

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/herald --create-home herald
COPY --from=build /src/target/release/herald /usr/local/bin/herald
COPY --from=offers /src/client-js/offers/dist /usr/share/herald/offers
COPY deploy/herald.example.toml /etc/herald/herald.example.toml
USER herald
WORKDIR /var/lib/herald
ENV HERALD__SERVER__HOST=0.0.0.0 \
    HERALD__WEBHOOKS__STORE=/var/lib/herald/webhooks.redb
EXPOSE 6001
ENTRYPOINT ["/usr/local/bin/herald"]
