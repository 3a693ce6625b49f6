# syntax=docker/dockerfile:1
# crr-gateway image: docker build -t crr-gateway:0.1.0 .
# Two stages on the same base, so the virtualenv built in the first runs unchanged in the second.

FROM python:3.11-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv

# Dependencies first, in their own layer: it is rebuilt only when the lock changes. Exactly the
# locked versions, each file checked against its hash (requirements/runtime.txt: `make lock`).
COPY requirements/runtime.txt ./requirements/
RUN pip install --require-hashes --requirement requirements/runtime.txt

# Then the project itself, as a wheel, without touching the dependencies again; built with the
# locked setuptools, so nothing unhashed is fetched.
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install --no-deps --no-build-isolation .


FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="crr-gateway" \
      org.opencontainers.image.description="Restart containers in place through OpenKruise ContainerRecreateRequests" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    CRR_GATEWAY_HOST=0.0.0.0

RUN groupadd --system --gid 10001 crr-gateway \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin crr-gateway

COPY --from=builder /opt/venv /opt/venv

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd. The port is the
# settings' default (8080; CRR_GATEWAY_PORT or PORT change it).
USER 10001:10001
# An empty, root-owned working directory: `python -m` puts it first on sys.path.
WORKDIR /app
EXPOSE 8080

CMD ["python", "-m", "service"]
