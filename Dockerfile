# syntax=docker/dockerfile:1.7
# Timbre's image: the API (default command) and the ingest job, from one build.
#
# Build arguments:
#   TORCH_VARIANT  cpu (default) | cu128 ... : which PyTorch wheel index to install torch from.
#                  CUDA wheels carry their own CUDA runtime; the host needs the NVIDIA driver
#                  and container toolkit (see docs/deploy.md, "GPU workers").
#   MODELS         volume (default): models are fetched from the hub on first start into the
#                  HF cache on the /cache volume and reused from then on;
#                  baked: `timbre models download` runs at build time and the verified
#                  bundle ships inside the image (air-gapped sites; ~2.3 GB larger).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG MODELS=volume

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# -- build: a virtualenv with torch (pinned, from the chosen index) and Timbre ----------------
FROM base AS builder
ARG TORCH_VARIANT=cpu
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Same pin as pyproject.toml; installed first from the variant's index so that resolving the
# project's dependencies can never pull a different (multi-GB) build.
RUN pip install --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" torch==2.13.0
COPY pyproject.toml README.md constraints.txt /opt/timbre/
COPY timbre /opt/timbre/timbre
COPY ingest /opt/timbre/ingest
COPY app /opt/timbre/app
COPY config /opt/timbre/config
COPY qdrant /opt/timbre/qdrant
# Editable: the package runs from /opt/timbre, beside config/default.yaml and
# qdrant/collection.yaml, which Timbre reads relative to its source tree. The constraints hold
# every dependency to the tested set.
RUN pip install -c /opt/timbre/constraints.txt -e /opt/timbre

# -- models baked into the image (MODELS=baked) -----------------------------------------------
FROM builder AS models-baked
RUN timbre models download --to /models

# -- runtime ------------------------------------------------------------------------------------
FROM base AS runtime-common
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin timbre \
    && mkdir -p /data /cache /library \
    && chown timbre:timbre /data /cache
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/timbre /opt/timbre
ENV PATH=/opt/venv/bin:$PATH \
    TIMBRE_DATA_DIR=/data \
    TIMBRE_API__HOST=0.0.0.0 \
    HF_HOME=/cache/hf
WORKDIR /data

FROM runtime-common AS runtime-volume
VOLUME ["/cache"]

FROM runtime-common AS runtime-baked
COPY --from=models-baked --chown=timbre:timbre /models /models
ENV TIMBRE_MODELS__BUNDLE=/models \
    HF_HUB_OFFLINE=1

FROM runtime-${MODELS} AS final
USER timbre
VOLUME ["/data"]
EXPOSE 8000
# No curl in slim images: Python asks /healthz itself.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["timbre"]
CMD ["serve"]
