# Image for cluster runs (Kubeflow steps and Katib trials run the project's own commands).
# On a GPU node the default PyPI build of torch 2.13.0 brings CUDA; nothing is downloaded at run time.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
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
RUN pip install torch==2.13.0 && pip install -c constraints.txt .
COPY data ./data

RUN useradd --create-home genomenlp
USER genomenlp
CMD ["genomenlp", "--help"]
