# syntax=docker/dockerfile:1
# Multi-stage build: a static sdbmaint (CGO off; the SQLite driver is pure Go)
# in a minimal image that runs as a non-root user. The config and the store
# live on volumes so the container itself stays disposable.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sdbmaint ./cmd/sdbmaint

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sdbmaint /usr/local/bin/sdbmaint
# /etc/sdbmaint: sdbmaint.yaml, the SSH key, known_hosts, trusted_root.json (read-only).
# /var/lib/sdbmaint: the SQLite store (store.path: /var/lib/sdbmaint/sdbmaint.db).
VOLUME ["/etc/sdbmaint", "/var/lib/sdbmaint"]
WORKDIR /var/lib/sdbmaint
USER nonroot:nonroot
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/sdbmaint"]
CMD ["serve", "--config", "/etc/sdbmaint/sdbmaint.yaml"]
