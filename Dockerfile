# Image for cluster runs: Kubeflow pipeline steps and Katib trials run the project's own commands
# (train, sweep, ...), which are on PATH. Two variants from this one file:
#   docker build --build-arg VARIANT=cpu  -t genomenlp:cpu .    # torch from the PyTorch CPU index
#   docker build --build-arg VARIANT=cuda -t genomenlp:cuda .   # torch's default PyPI build (CUDA)
# The CUDA build brings its CUDA libraries with it; a GPU node needs only the NVIDIA driver.
# Nothing is downloaded at run time (the Hugging Face libraries are kept offline).
FROM python:3.11-slim

ARG VARIANT=cpu
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    ZENML_ANALYTICS_OPT_IN=false \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_DATASETS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false

WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml constraints.txt README.md ./
COPY components ./components
COPY steps ./steps
COPY pipelines ./pipelines
# The same steps as the Makefile's install (torch first from its exact pin, then the project under
# constraints.txt); only where torch comes from differs between the variants.
RUN case "$VARIANT" in \
        cpu) torch_index="--index-url $TORCH_CPU_INDEX" ;; \
        cuda) torch_index="" ;; \
        *) echo "VARIANT must be cpu or cuda, not '$VARIANT'" >&2; exit 1 ;; \
    esac \
    && pip install --upgrade "pip>=24" \
    && pip install $torch_index torch==2.13.0 \
    && pip install -c constraints.txt .
COPY data ./data

# A numeric user, so Kubernetes can verify runAsNonRoot (the Katib trial template runs as 10001).
# It owns /app, the working folder, because commands resolve relative paths (data/..., outputs)
# there; the installed code in site-packages stays root-owned.
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin genomenlp \
    && chown -R 10001:10001 /app
USER 10001:10001
LABEL org.opencontainers.image.title="genomenlp" \
      org.opencontainers.image.description="Genome NLP commands (train, sweep, ...) for Kubeflow and Katib"
# No ENTRYPOINT: Kubeflow and Katib set the command (train, sweep, python -m ...).
CMD ["genomenlp", "--help"]
