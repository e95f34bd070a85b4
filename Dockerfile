# syntax=docker/dockerfile:1
#
# mcpmux container images. Two targets:
#
#   slim (the default, last stage): mcpmux alone on distroless (glibc, CA certificates, no shell,
#        runs as uid 65532). Serves the built-in demo servers and remote (url) servers.
#   full: mcpmux plus Node.js (node, npm, npx) and Python 3 with uv (uv, uvx), so that
#        `npx …` and `uvx …` stdio servers work; tini is PID 1 to reap their orphans.
#
#   docker build -t mcpmux:slim .
#   docker build --target full -t mcpmux:full .
#   docker build --build-arg MCPMUX_BUILD_COMMIT="$(git rev-parse --short=12 HEAD)" -t mcpmux:slim .
#
# Run (a non-loopback listen address needs a token, see deploy/README.md):
#
#   docker run --rm -p 127.0.0.1:8080:8080 -e MCPMUX_AUTH_TOKEN="$(openssl rand -hex 32)" mcpmux:slim
#   docker run --rm -p 127.0.0.1:8080:8080 -v "$PWD/my-config:/config:ro" \
#     -v "$PWD/token:/run/secrets/mcpmux_token:ro" mcpmux:full   # config with "authTokenFile"
#
# The config is /config/mcp.json (MCPMUX_CONFIG); mount a directory over /config, not a single
# file, so that edits are seen and reloaded. The binary is built by scripts/build-release.sh, the
# same script CI runs. tests/image.rs runs the binary with this file's ENV, ENTRYPOINT, CMD and
# HEALTHCHECK (it reads them from here).

ARG RUST_VERSION=1.95
ARG NODE_VERSION=24
ARG UV_VERSION=0.13.8

# ---------------------------------------------------------------------------------------------
# Build

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# Dependencies first, from the manifest and the lock file alone: this layer is reused until one
# of them changes.
COPY Cargo.toml Cargo.lock ./
COPY scripts/build-release.sh scripts/
RUN scripts/build-release.sh --deps-only
COPY src src
COPY benches benches
# Shown by `mcpmux --version` and /status. Declared here so that it does not invalidate the
# dependency layer.
ARG MCPMUX_BUILD_COMMIT=""
RUN scripts/build-release.sh --out /out

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---------------------------------------------------------------------------------------------
# full: for npx / uvx stdio servers

FROM node:${NODE_VERSION}-bookworm-slim AS full
# Debian's packages are not pinned: the base image tag is, and security updates are wanted.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 mcpmux \
    && useradd --no-log-init --uid 65532 --gid 65532 --create-home --home-dir /home/mcpmux \
       --shell /usr/sbin/nologin mcpmux
COPY --from=uv /uv /uvx /usr/local/bin/
COPY --from=build /out/mcpmux /usr/local/bin/mcpmux
COPY docker/mcp.json /config/mcp.json
# Children get PATH and HOME from here (npx and uvx keep their caches under HOME), but not the
# rest of this environment: mcpmux passes a child only a short list plus its config's `env`.
ENV MCPMUX_CONFIG=/config/mcp.json \
    MCPMUX_LISTEN=0.0.0.0:8080 \
    MCPMUX_LOG_FORMAT=json \
    HOME=/home/mcpmux
USER 65532:65532
WORKDIR /home/mcpmux
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/mcpmux", "healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/mcpmux"]
CMD ["serve"]
LABEL org.opencontainers.image.title="mcpmux (full: Node.js, Python, uv)" \
      org.opencontainers.image.description="Many MCP servers behind one streamable-HTTP URL" \
      org.opencontainers.image.licenses="Apache-2.0"

# ---------------------------------------------------------------------------------------------
# slim (default): mcpmux alone

FROM gcr.io/distroless/cc-debian12:nonroot AS slim
COPY --from=build /out/mcpmux /usr/local/bin/mcpmux
COPY docker/mcp.json /config/mcp.json
ENV MCPMUX_CONFIG=/config/mcp.json \
    MCPMUX_LISTEN=0.0.0.0:8080 \
    MCPMUX_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/mcpmux", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/mcpmux"]
CMD ["serve"]
LABEL org.opencontainers.image.title="mcpmux" \
      org.opencontainers.image.description="Many MCP servers behind one streamable-HTTP URL" \
      org.opencontainers.image.licenses="Apache-2.0"
