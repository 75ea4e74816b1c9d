# Image for cluster runs: Kubeflow pipeline steps and Katib trials run the project's own commands
# (train, sweep, ...), which are on PATH. Two variants from this one file:
#   docker build --build-arg VARIANT=cpu  -t genomenlp:cpu .    # torch from the PyTorch CPU index
#   docker build --build-arg VARIANT=cuda -t genomenlp:cuda .   # torch's default PyPI build (CUDA)
# The CUDA build brings its CUDA libraries with it; a GPU node needs only the NVIDIA driver.
# Nothing is downloaded at run time (the Hugging Face libraries are kept offline).
# For a reproducible build, pin the base image by digest (k8s/README.md, "Images by digest"):
#   docker build --build-arg BASE_IMAGE=python:3.11-slim@sha256:<digest> ...
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG VARIANT=cpu
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

# DL3064 reads TOKENIZERS_PARALLELISM as a token; it is the tokenizers library's thread switch, not a secret.
# hadolint ignore=DL3064
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    ZENML_ANALYTICS_OPT_IN=false \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_DATASETS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false

WORKDIR /app
# Debian replaces a package's version in place with each security update, so a pinned git would break the
# build within weeks; the base image (pin it by digest) fixes the Debian release instead.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml constraints.txt README.md ./
COPY genomenlp ./genomenlp
# Before the install: genomenlp/data links to it, and the installed package carries the bundled data.
COPY data ./data
# The same steps as the Makefile's install (torch first from its exact pin, then the project under
# constraints.txt); only where torch comes from differs between the variants. The index options are the
# shell's positional parameters, so an index URL is never split or globbed.
# DL3013 reads the index options ("$@") as an unpinned package; torch is pinned and the rest by constraints.txt.
# hadolint ignore=DL3013
RUN case "$VARIANT" in \
        cpu) set -- --index-url "$TORCH_CPU_INDEX" ;; \
        cuda) set -- ;; \
        *) echo "VARIANT must be cpu or cuda, not '$VARIANT'" >&2; exit 1 ;; \
    esac \
    && pip install --upgrade "pip>=24" \
    && pip install "$@" torch==2.13.0 \
    && pip install -c constraints.txt .

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
