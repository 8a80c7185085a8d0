# The MNIST digit service: CPU-only TensorFlow behind FastAPI, with the committed model baked in.
#   docker build -t mnist-service .                  the serving image (the last stage, "serve")
#   docker build --target train -t mnist-train .     the training job (adds the [train] extra: matplotlib, scikit-learn)
# Dependencies resolve through constraints.txt, so the image holds exactly the versions CI tested.
ARG BASE_IMAGE=python:3.11-slim

# ---- build: a virtual environment with the runtime dependencies and the project, nothing else ----
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# binutils only strips TensorFlow's symbol tables below; this stage is thrown away.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends binutils && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The venv gets no pip of its own: the base image's pip installs into it, so none ships in the final image.
RUN python -m venv --without-pip /opt/venv
COPY pyproject.toml constraints.txt ./
# Dependencies first, in their own layer: a code change does not reinstall TensorFlow.
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > requirements.txt \
 && python -m pip --python /opt/venv/bin/python install --no-compile -c constraints.txt -r requirements.txt \
 && SITE=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
 # C++ headers (for compiling custom ops) and libclang (for generating bindings) are never used to serve.
 && rm -rf "$SITE/tensorflow/include" \
 && python -m pip --python /opt/venv/bin/python uninstall -y -q libclang \
 # TensorFlow's libraries carry ~200 MB of symbol tables for debuggers; the dynamic symbols loading needs stay.
 # (Only TensorFlow's own: strip can corrupt the patchelf-edited libraries other wheels bundle.)
 && find "$SITE/tensorflow" -name '*.so*' -type f -exec strip --strip-unneeded {} + \
 && find "$SITE" -mindepth 2 -type d -name tests -prune -exec rm -rf {} + \
 && /opt/venv/bin/python -m compileall -q -j 0 "$SITE" >/dev/null
COPY README.md ./
COPY app/ app/
COPY training/ training/
COPY evalsets/ evalsets/
RUN python -m pip --python /opt/venv/bin/python install --no-deps --no-compile . \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# ---- serve-build: the venv without what serving never imports ----
# Keras (with h5py, rich, pygments, markdown-it, namex) is for training and saving models, grpcio for gRPC
# clients, setuptools for building packages: loading and calling a SavedModel and the app import none of them
# (TensorFlow's import tolerates a missing Keras). tests/test_tensorflow_import.py checks the app without them.
# Three TensorFlow extensions no serving path loads (the profiler's plugin, XLA's ops, StableHLO's bindings: none is
# mapped in a serving process that answered every protocol) go too, and the site-packages' .pyc files (Python
# compiles what it imports at start instead; docs/deployment.md gives what that costs at start-up).
FROM build AS serve-build
RUN python -m pip --python /opt/venv/bin/python uninstall -y -q \
      keras h5py rich pygments markdown-it-py mdurl namex grpcio setuptools \
 && SITE=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
 && rm "$SITE/tensorflow/python/profiler/internal/_pywrap_profiler_plugin.so" \
       "$SITE/tensorflow/compiler/tf2xla/ops/_xla_ops.so" \
       "$SITE/tensorflow/compiler/mlir/stablehlo/stablehlo_extension.so" \
 && find "$SITE" -name '*.pyc' -delete

# ---- train-build: the same venv plus the training report's pictures and the non-digits' photos ----
FROM build AS train-build
RUN python -m pip --python /opt/venv/bin/python install -c constraints.txt 'matplotlib>=3.8,<4' 'scikit-learn>=1.5,<2'

# ---- runtime: what both final images share (no compilers, no pip in the venv, a non-root user) ----
FROM ${BASE_IMAGE} AS runtime
# HOME and MPLCONFIGDIR point at /tmp: with a read-only root filesystem /tmp is the one writable place
# (podman --read-only mounts a tmpfs there; docker-compose.yml and k8s/ declare one).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    KERAS_HOME=/tmp/.keras \
    TF_CPP_MIN_LOG_LEVEL=2 \
    MODEL_BASE_PATH=/app/models
RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid app --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app
WORKDIR /app

# ---- train: `docker compose --profile train run --rm train` writes the next version into /app/models ----
FROM runtime AS train
COPY --from=train-build /opt/venv /opt/venv
ENV MNIST_DATA_DIR=
USER 10001:10001
ENTRYPOINT ["mnist-train"]
CMD ["--output", "/app/models/mnist"]

# ---- serve (default): the API on port 8000 ----
FROM runtime AS serve
COPY --from=serve-build /opt/venv /opt/venv
COPY --chown=root:root models/ /app/models/
COPY app/healthcheck.py /app/healthcheck.py
# WORKERS: server processes (each loads the model); TF_*_THREADS: 0 = derive from the cores (see app/settings.py).
ENV HOST=0.0.0.0 \
    PORT=8000 \
    WORKERS=1 \
    TF_INTRA_OP_THREADS=0 \
    TF_INTER_OP_THREADS=0 \
    LOG_LEVEL=info \
    LOG_FORMAT=json
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["python", "/app/healthcheck.py"]
CMD ["mnist-serve"]
