# syntax=docker/dockerfile:1.7
#
# predictive-scaler container image.
#
#   docker build -t predictive-scaler:local .
#   docker run --rm -p 8080:8080 predictive-scaler:local            # serve, embedded SQLite
#   docker run --rm predictive-scaler:local demo                     # any other subcommand
#
# Needs BuildKit (default since Docker 23) for the cache mounts below.

############################
# Builder
############################
FROM rust:1.95-bookworm AS builder

# Native builds: librdkafka (rdkafka's cmake-build; includes curl/curl.h),
# LightGBM (CMake >= 3.28: Debian 12 ships 3.25, so pip's CMake is used),
# aws-lc (kube's TLS), bindgen users (clang/libclang).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        cmake clang libclang-dev libcurl4-openssl-dev pkg-config python3-pip \
 && pip install --break-system-packages cmake==3.31.10 \
 && rm -rf /var/lib/apt/lists/*
ENV CMAKE=/usr/local/bin/cmake

# Cargo features of the image: the Kubernetes scale target and the ML models.
ARG FEATURES="kubernetes ml"

# sqlx `query!` macros must not try to reach a database at build time: they use
# the committed `.sqlx/` offline data instead (no effect if the macros are unused).
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never

WORKDIR /src
COPY . .

# Dependency caching: the cargo registry, git checkouts and the target directory
# live in BuildKit cache mounts, so a source change recompiles only the
# workspace crates, not the dependency graph. The target dir is a cache mount,
# so the binary is copied out of it in the same step.
RUN --mount=type=cache,id=pscaler-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=pscaler-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=pscaler-target,target=/src/target,sharing=locked \
    cargo build --release --locked --features "$FEATURES" --bin predictive-scaler \
 && install -D -m 0755 target/release/predictive-scaler /out/predictive-scaler

############################
# Runtime
############################
FROM debian:bookworm-slim AS runtime

# ca-certificates: TLS to Kafka/PostgreSQL/the Kubernetes API.
# curl: the HEALTHCHECK below (the slim image has neither curl nor wget).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

# Fixed numeric ids so Kubernetes `runAsNonRoot` can verify them.
RUN groupadd --system --gid 10001 pscaler \
 && useradd --system --uid 10001 --gid pscaler --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin pscaler

# ONNX Runtime (planned, for the ort crate with `load-dynamic`): add the shared
# library and point ORT_DYLIB_PATH at it, e.g.
#   ADD https://github.com/microsoft/onnxruntime/releases/download/v1.31.1/onnxruntime-linux-x64-1.31.1.tgz /tmp/ort.tgz
#   RUN tar -xzf /tmp/ort.tgz -C /opt && rm /tmp/ort.tgz
#   ENV ORT_DYLIB_PATH=/opt/onnxruntime-linux-x64-1.31.1/lib/libonnxruntime.so.1.31.1

WORKDIR /app
COPY --from=builder /out/predictive-scaler /usr/local/bin/predictive-scaler
# config/default.toml is read relative to the working directory (/app).
COPY --chown=root:root config/ /app/config/
# data/ holds the demo trace and, in the embedded default, the SQLite file
# data/pscaler.db, so it must be writable by the runtime user.
COPY --chown=pscaler:pscaler data/ /app/data/

USER 10001:10001

EXPOSE 8080

# Assumes the default bind port 8080; adjust if PSCALER_HTTP__BIND changes it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/health/live"]

ENTRYPOINT ["predictive-scaler"]
CMD ["serve"]
