# CAP Verifier image: the `cap` CLI, the API (`cap serve`) and the Prefect worker (`prefect worker start`).
#   docker build -t cap-verifier:0.12.0 .
#   docker run --rm -p 8080:8080 cap-verifier:0.12.0            # serve --host 0.0.0.0 --port 8080
# The Helm chart (helm/) runs it with a read-only root filesystem; writable paths are /tmp and /var/lib/cap-state,
# whose subdirectory data/ is the data dir (a restore keeps its locks and journal beside it and swaps it by rename).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    CAP_HOME=/app \
    CAP_DATA_DIR=/var/lib/cap-state/data \
    CAP_BUILD_DIR=/tmp/cap-build \
    PREFECT_HOME=/tmp/prefect

RUN groupadd --system --gid 10001 cap \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/cap-state --no-create-home \
      --shell /usr/sbin/nologin cap \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/cap-state /var/lib/cap-state/data

WORKDIR /app
# Sources stay in /app: prefect.yaml entrypoints (flows/...) are resolved relative to CAP_HOME.
COPY pyproject.toml prefect.yaml ./
COPY core ./core
COPY tasks ./tasks
COPY flows ./flows
COPY deployments ./deployments
RUN pip install . && rm -rf build ./*.egg-info

USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["cap"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
