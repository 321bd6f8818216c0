# syntax=docker/dockerfile:1
# hyperlab for self-hosting trainers:
#   docker build -t hyperlab .
#   docker run --rm -p 8000:8000 hyperlab        # then open http://localhost:8000
#
# Stage 1 builds the wheel: the setup.py build hook runs `npm ci` from the committed package-lock.json
# and copies xterm.js + Pyodide into static/vendor/, so the wheel carries them. Stage 2 installs the
# wheel (no npm, no compiler: the guest images are committed package data) and runs the site.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS node

FROM ${PYTHON_IMAGE} AS build
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && node --version && npm --version
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Front-end assets first, in their own layer (cached until package-lock.json changes).
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY requirements-dev.txt ./
RUN pip install $(grep -E '^(pip|setuptools|wheel)==' requirements-dev.txt)
COPY . .
# The hyperlab wheel (build hook vendors the assets), then every runtime dependency as a wheel,
# pinned to the versions the tests ran against.
RUN pip wheel --no-build-isolation -c requirements-dev.txt -w /wheels . \
 && python -c "import sys, zipfile, glob; n = zipfile.ZipFile(glob.glob('/wheels/hyperlab-*.whl')[0]).namelist(); \
sys.exit(0 if 'hyperlab/static/vendor/xterm/xterm.mjs' in n and 'hyperlab/static/vendor/pyodide/pyodide.asm.wasm' in n else 'wheel lacks static/vendor')"

FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels hyperlab \
 && useradd --create-home --uid 1000 hyperlab
USER hyperlab
WORKDIR /home/hyperlab
# Lab disks and the students' lesson progress (SQLite) live here: mount a volume to keep them.
ENV HYPERLAB_DATA_DIR=/home/hyperlab/data
RUN mkdir -p /home/hyperlab/data
VOLUME /home/hyperlab/data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["hyperlab", "serve", "--host", "0.0.0.0", "--port", "8000"]
