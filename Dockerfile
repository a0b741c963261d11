# fewsmap as a container image: `fewsmap serve`, `fewsmap ingest` and the dask scheduler and
# workers of a distributed ingest (`dask scheduler`, `dask worker`) all run from it
# (compose.yaml, docs/design/distributed.md). Installed as the Makefile installs it: every
# package from requirements/lock.txt checked against its sha256 hashes, then fewsmap itself
# without dependencies. The lock is for CPython 3.11 on linux/amd64.

# The viewer's browser libraries, from npm as `make vendor` copies them; the install below finds
# them current (stamped with package-lock.json's sha256) and needs no npm (setup.py).
FROM node:22-bookworm-slim AS viewer
WORKDIR /viewer
COPY fewsmap/viewer/package.json fewsmap/viewer/package-lock.json fewsmap/viewer/vendor.mjs ./
RUN npm ci --no-audit --no-fund && npm run --silent vendor

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/fewsmap
COPY requirements/lock.txt requirements/lock.txt
RUN python -m pip install --no-cache-dir --require-hashes --no-deps -r requirements/lock.txt
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY fewsmap fewsmap
COPY --from=viewer /viewer/vendor fewsmap/viewer/vendor
RUN python -m pip install --no-cache-dir --no-deps --no-build-isolation . \
 && useradd --create-home --uid 1000 fewsmap
USER fewsmap
WORKDIR /home/fewsmap
EXPOSE 8080
CMD ["fewsmap", "serve", "--host", "0.0.0.0", "--port", "8080"]
