# Demo deployment: the same install (`pip install -e .` from pyproject.toml) and the same start
# command (`trendlab serve`) that `make run` uses. Build: docker build -t trendlab .
FROM python:3.11-slim

# TRENDLAB_REQUIRE_AUTH: the server refuses to start until TRENDLAB_PASSWORD (pages) and
# TRENDLAB_API_TOKEN (API) are given with `docker run -e`; see docs/deploy.md.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TRENDLAB_HOME=/data \
    TRENDLAB_REQUIRE_AUTH=1

RUN useradd --create-home --uid 1000 trendlab \
    && mkdir -p /data && chown trendlab:trendlab /data

WORKDIR /app
COPY --chown=trendlab:trendlab . /app
# torch==2.13.0 is pinned in pyproject.toml; the CPU index keeps the image free of CUDA.
# TRENDLAB_EXTRAS="[ray]" (compose.yaml) adds Ray for a team's cluster.
ARG TRENDLAB_EXTRAS=""
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -e .${TRENDLAB_EXTRAS} \
    && chown -R trendlab:trendlab /app

USER trendlab
VOLUME ["/data"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://localhost:8501/_stcore/health').read() != b'ok')"

CMD ["trendlab", "serve", "--port", "8501", "--address", "0.0.0.0"]
