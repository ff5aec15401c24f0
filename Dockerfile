# aws-event-adapter container image.
#
#   docker build -t aws-event-adapter .
#   docker run --rm -v "$PWD/config/examples:/etc/aws-event-adapter:ro" \
#       aws-event-adapter validate --config /etc/aws-event-adapter/all-in-one.yaml
#
# The entrypoint is the binary itself, so the image is a drop-in for
# TriggerMesh's adapter images: with the default command (`run` without
# --config) it takes TriggerMesh's environment variables; Kubernetes manifests
# pass `run --config ...` as args (config/kubernetes/deployment.yaml).
#
# No container engine runs where this project is developed and tested, so
# this file is never built there. It is linted by hadolint
# (tests/support/check_manifests.py), and what its runtime stage assumes is
# proven by tests/support/check_image.py: the release binary runs, as
# 65532:65532 with a read-only root, in a tree made of the Debian 12 packages
# this image holds (glibc, libgcc_s, the CA bundle) and nothing else.

# ---- build -----------------------------------------------------------------
# Debian 12 (bookworm), like the runtime image below: the binary links against
# the glibc it is built with, so the runtime's glibc must not be older.
# The slim image brings gcc and libc6-dev, all that aws-lc-sys (rustls' crypto)
# and libmimalloc-sys (the allocator) need to compile: aws-lc-sys ships
# pregenerated bindings for x86_64 and aarch64 Linux.
FROM rust:1.95-slim-bookworm AS build

WORKDIR /src

# Symbols are of no use in the image; this keeps the binary a fraction of its size.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_TERM_COLOR=never

# Dependencies first, in a layer of their own: it is rebuilt only when
# Cargo.toml, Cargo.lock, benches/ or examples/ change, not on every edit of
# src/. Cargo refuses a manifest whose declared [[bench]] or [[example]] file is
# missing, so both come along (`cargo build` compiles neither).
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY examples ./examples
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && cargo build --release --locked \
    && rm -rf src

COPY src ./src
# touch: COPY keeps the files' own times, which can be older than the
# placeholder's build output; cargo would then keep the placeholder binary.
RUN touch src/main.rs \
    && cargo build --release --locked \
    && cp target/release/aws-event-adapter /aws-event-adapter

# ---- runtime ---------------------------------------------------------------
# distroless cc: glibc and libgcc_s (all the binary links against), CA
# certificates in /etc/ssl/certs/ca-certificates.crt, and a nonroot user
# (65532). The AWS SDK's TLS stack (rustls with rustls-native-certs) reads the
# system's CA store, found through SSL_CERT_FILE.
FROM gcr.io/distroless/cc-debian12:nonroot

LABEL org.opencontainers.image.title="aws-event-adapter" \
      org.opencontainers.image.description="Data plane between AWS (S3 notifications on SQS, SQS, S3) and CloudEvents" \
      org.opencontainers.image.licenses="Apache-2.0"

# Set explicitly rather than inherited, so that neither the bare-name
# ENTRYPOINT nor the CA store depends on the base image's defaults.
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

COPY --from=build /aws-event-adapter /usr/local/bin/aws-event-adapter

# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532

# 8080: /healthz, /readyz, the targets (and /health in TriggerMesh mode);
# 9092: /metrics.
EXPOSE 8080 9092

ENTRYPOINT ["aws-event-adapter"]
CMD ["run"]
