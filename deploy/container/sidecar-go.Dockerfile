# syntax=docker/dockerfile:1
# Example sidecar in Go: the `batch` plugin (sidecars/go/examples/batch). Build from the repository root:
#   docker build -f deploy/container/sidecar-go.Dockerfile -t plugin-bridge/sidecar-batch:0.1.0 .

# sidecars/go/go.mod says go 1.26 (connect-go 1.21.1 requires it).
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src/sidecars/go
# Modules first: that layer is rebuilt only when go.mod or go.sum change.
COPY sidecars/go/go.mod sidecars/go/go.sum ./
RUN go mod download
COPY sidecars/go ./
# Static, so the runtime image needs no C library of a particular version.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/plugin-bridge-batch ./examples/batch

# Not distroless: batch jobs are arbitrary commands (`sh -c ...` in the tests), so the image keeps a shell and
# coreutils. Add what your jobs need here.
FROM debian:bookworm-slim
COPY --from=build /out/plugin-bridge-batch /usr/local/bin/plugin-bridge-batch
# Jobs' working directories and logs. The Kubernetes manifest would mount a volume here; in plain docker the
# directory is created writable for the sidecar's user.
ENV BATCH_JOBS_DIR=/var/lib/plugin-bridge-batch
RUN mkdir -p /var/lib/plugin-bridge-batch && chown 65532:65532 /var/lib/plugin-bridge-batch
# As in the Python image: set PLUGIN_BRIDGE_ENDPOINT to an address the hosts can dial.
USER 65532:65532
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/plugin-bridge-batch"]
