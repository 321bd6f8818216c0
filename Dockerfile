# hyperlab for self-hosting trainers (README, "Self-hosting with Docker"; docs/deployment.md):
#   DOCKER_BUILDKIT=1 docker build -t hyperlab .
#   docker run --rm -p 127.0.0.1:8000:8000 hyperlab        # then open http://localhost:8000
#
# One base, Debian 12 (`DEBIAN_IMAGE`, the public debian:bookworm-slim by default): Python 3.11 and Node.js
# come from Debian's archive. Where no container registry is reachable, `python3 tools/docker_image.py`
# (or `make docker-image`) makes that base from Debian's archive with debootstrap and builds this file.
#
# Behind a TLS-inspecting proxy, hand its CA bundle to the build as a secret:
#   docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt -t hyperlab .
# It is mounted only while npm and pip download, so it is in no layer of any stage.
#
# Stages: `assets` runs `npm ci` from the committed package-lock.json (xterm.js, Pyodide); `pins` picks
# the runtime pins out of requirements-dev.txt; `build` makes the hyperlab wheel (static/vendor/ inside)
# and the pinned dependency wheels; the final stage installs only those wheels into a venv, without pip,
# npm or a compiler, and runs the site as an unprivileged user.
# No `# syntax=` line: BuildKit's built-in frontend suffices, and fetching another needs a registry.

ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS python
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
 && apt-get clean && rm -rf /var/lib/apt/lists/*

FROM ${DEBIAN_IMAGE} AS assets
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=ca --mount=type=cache,target=/root/.npm \
    if grep -qs "BEGIN CERTIFICATE" /run/secrets/ca; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi \
 && npm ci --ignore-scripts --no-audit --no-fund

# What the image installs, pinned: the build tools and the runtime section of requirements-dev.txt (the
# versions the tests ran against; extras dropped, as constraints may not carry them), and the runtime
# requirements of pyproject.toml. Derived in a stage of its own: the wheels below are built again only
# when these two small files change, not whenever a test tool's pin does.
FROM python AS pins
WORKDIR /pins
COPY requirements-dev.txt pyproject.toml /tmp/
RUN sed -n '/^# --- build tools/,/^# --- tests/p' /tmp/requirements-dev.txt | grep -E '^[A-Za-z]' \
      | sed -E 's/\[[^]]*\]//' > constraints.txt \
 && python3 -c "import tomllib; print(*tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
      > runtime.txt \
 && grep -q '^unicorn==' constraints.txt && grep -q '^pip==' constraints.txt

FROM python AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The dependency wheels first, in their own layer; pip's own wheel too: the final stage installs with it
# without installing it.
COPY --from=pins /pins/ /pins/
RUN --mount=type=secret,id=ca --mount=type=cache,target=/root/.cache/pip \
    if grep -qs "BEGIN CERTIFICATE" /run/secrets/ca; then export PIP_CERT=/run/secrets/ca; fi \
 && /opt/build/bin/pip install $(grep -E '^(pip|setuptools|wheel)==' /pins/constraints.txt) \
 && /opt/build/bin/pip wheel -c /pins/constraints.txt -w /wheels -r /pins/runtime.txt \
      $(grep -E '^pip==' /pins/constraints.txt)
COPY --from=assets /src/node_modules node_modules
COPY . .
RUN python3 tools/vendor.py --no-npm \
 && HYPERLAB_SKIP_VENDOR=1 /opt/build/bin/pip wheel --no-deps --no-build-isolation -w /wheels . \
 && python3 -c "import sys, zipfile, glob; n = zipfile.ZipFile(glob.glob('/wheels/hyperlab-*.whl')[0]).namelist(); \
sys.exit(0 if 'hyperlab/static/vendor/xterm/xterm.mjs' in n and 'hyperlab/static/vendor/pyodide/pyodide.asm.wasm' in n else 'wheel lacks static/vendor')"

FROM python
ENV PYTHONUNBUFFERED=1 PATH=/opt/hyperlab/bin:$PATH
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python3 -m venv --without-pip /opt/hyperlab \
 && pip=$(echo /wheels/pip-*.whl) \
 && PIP_DISABLE_PIP_VERSION_CHECK=1 /opt/hyperlab/bin/python "$pip/pip" install --no-cache-dir --no-index \
      --find-links /wheels hyperlab \
 && useradd --create-home --uid 1000 hyperlab
USER hyperlab
WORKDIR /home/hyperlab
# Lab disks and the students' progress (SQLite) live here: mount a volume to keep them.
ENV HYPERLAB_DATA_DIR=/home/hyperlab/data
RUN mkdir -p /home/hyperlab/data
VOLUME /home/hyperlab/data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["hyperlab", "serve", "--host", "0.0.0.0", "--port", "8000"]
