# syntax=docker/dockerfile:1
# Example sidecar in Python: the `sql` plugin (sidecars/python/src/plugin_bridge/examples/sql), which ships
# inside the kit's package. Build from the repository root:
#   docker build -f deploy/container/sidecar-python.Dockerfile -t plugin-bridge/sidecar-sql:0.1.0 .
# A plugin of your own: install your package into the same virtual environment and change CMD.

# The kit needs Python >= 3.10; 3.11 is what CI tests it with.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
# A virtual environment, so the runtime stage copies one directory and nothing of pip's own.
RUN python -m venv /opt/plugin-bridge
# Only what the wheel is built from (pyproject.toml names README.md as the long description).
COPY sidecars/python/pyproject.toml sidecars/python/README.md /src/sidecars/python/
COPY sidecars/python/src /src/sidecars/python/src/
COPY sidecars/python/gen /src/sidecars/python/gen/
# The kit pins protobuf, grpcio, grpcio-health-checking and nats-py exactly; all have manylinux wheels.
RUN /opt/plugin-bridge/bin/pip install --no-cache-dir --disable-pip-version-check /src/sidecars/python

FROM python:${PYTHON_VERSION}-slim-bookworm
COPY --from=build /opt/plugin-bridge /opt/plugin-bridge
# pip compiled the bytecode at install time; with a read-only root filesystem nothing else could be written.
ENV PATH=/opt/plugin-bridge/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# No default PLUGIN_BRIDGE_ENDPOINT: the kit's default is a unix socket only a host on the same machine can
# reach, and a wildcard TCP bind is announced as 127.0.0.1. Where hosts run elsewhere, set an address they can
# dial (the Kubernetes manifest uses the pod IP: docs/deploy.md).
USER 65532:65532
EXPOSE 50051
CMD ["python", "-m", "plugin_bridge.examples.sql"]
