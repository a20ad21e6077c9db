# The API (Litestar) alone: slim Python, the core dependencies only (no torch), a non-root user.
#   docker build -f docker/frontend.Dockerfile -t visualizr-frontend .    (from the repository root)
FROM python:3.12.8-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    VISUALIZR_HOST=0.0.0.0 VISUALIZR_PORT=8002 \
    VISUALIZR_DATA_DIR=/data VISUALIZR_MODEL_REPOSITORY=/models
WORKDIR /opt/visualizr
COPY pyproject.toml setup.py README.md ./
COPY visualizr ./visualizr
COPY frontend ./frontend
COPY export ./export
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin visualizr \
    && mkdir -p /data /models && chown visualizr /data

USER 10001
EXPOSE 8002
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8002/api/v1/health', timeout=4)"]
CMD ["python", "-m", "visualizr.frontend"]
