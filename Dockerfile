# syntax=docker/dockerfile:1
# assistant-service: the HTTP and WebSocket service, for Cloud Run or any container host.
#   docker build -t assistant-service .
#   docker run -p 8000:8000 -e OPENAI_API_KEY assistant-service

ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what the wheel needs (see .dockerignore); tests and tooling stay out of the image.
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install ".[all]"

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz\", timeout=4).status == 200 else 1)"]
# Exec form: the server is PID 1 and gets SIGTERM itself, so it drains before stopping.
CMD ["assistant-service", "serve"]
