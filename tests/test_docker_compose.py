"""docker-compose.yml, Dockerfile and .env.example, checked without a Docker engine.

Every command a service runs must exist (turret subcommands through click, airflow subcommands through
Airflow's own argument parser), every TURRET_* variable must be a setting, every AIRFLOW__SECTION__KEY a real
Airflow option, ports and volumes must agree with the code's defaults, and .env.example must cover every
variable the compose file interpolates. Airflow is asked once, in one subprocess, for the whole module.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_PATH = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
UPSTREAM = {"postgres", "redis"}  # services that run a stock image, not ours
ONE_SHOT = {"airflow-init"}
SHELL_SPLIT = {"&&", "||", ";", "|"}
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; "$$" is compose's escaped "$".
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?+])([^}]*))?\}")


def _raw() -> str:
    return COMPOSE_PATH.read_text()


def _interpolate(value: str) -> str:
    """Resolve compose interpolation the way `docker compose config` would with an empty .env."""
    text = value.replace("$$", "\0")
    text = INTERPOLATION.sub(lambda m: m.group(3) if m.group(2) in (":-", "-") else "", text)
    return text.replace("\0", "$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(_raw())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _shell_commands(script: str) -> list[list[str]]:
    """Simple commands in a shell snippet (one per line or separated by && ; | ||)."""
    commands = []
    for line in script.replace("$$", "$").replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            tokens = shlex.split(line)
        except ValueError:
            continue
        current: list[str] = []
        for token in tokens + [";"]:
            if token in SHELL_SPLIT:
                if current:
                    commands.append(current[1:] if current[0] == "exec" else current)
                current = []
            else:
                current.append(token)
    return commands


def _all_commands(services: dict) -> list[tuple[str, list[str]]]:
    """(service, argv) of every command the compose file runs: commands and health checks."""
    found = []
    for name, svc in services.items():
        command = svc.get("command")
        if isinstance(command, str):
            found += [(name, c) for c in _shell_commands(command)]
        elif command:
            command = [str(c) for c in command]
            if command[0] in ("bash", "sh") and command[1] == "-c":
                found += [(name, c) for c in _shell_commands(command[2])]
            else:
                found.append((name, command))
        test = (svc.get("healthcheck") or {}).get("test")
        if test and test[0] == "CMD":
            found.append((name, [t.replace("$$", "$") for t in test[1:]]))
        elif test and test[0] == "CMD-SHELL":
            found += [(name, c) for c in _shell_commands(test[1])]
    return found


def _airflow_options(services: dict) -> set[tuple[str, str]]:
    options = set()
    for svc in services.values():
        for key in _env(svc):
            if key.startswith("AIRFLOW__"):
                _, section, option = key.split("__", 2)
                options.add((section.lower(), option.lower()))
    return options


# One Airflow subprocess answers everything: subcommands parsed by Airflow's own argparse tree, config
# options looked up in its configuration description, default ports, class paths imported.
_AIRFLOW_PROBE = r"""
import argparse, contextlib, io, json, sys
req = json.load(sys.stdin)
from airflow.cli.cli_parser import get_parser
from airflow.configuration import conf
import importlib

def import_string(path):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)

parser = get_parser()

def choices(p):
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}

def check(argv):
    p, path, rest = parser, [], list(argv)
    while rest and choices(p):
        if rest[0] not in choices(p):
            return "unknown subcommand: airflow " + " ".join(path + [rest[0]])
        p = choices(p)[rest[0]]
        path.append(rest.pop(0))
    if choices(p):
        return "airflow " + " ".join(path) + " needs a subcommand"
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            p.parse_args(rest)
    except SystemExit:
        return "airflow " + " ".join(argv) + ": " + err.getvalue().strip().splitlines()[-1]
    return None

description = conf.configuration_description
def known(section, option):
    return conf.has_option(section, option) or option in description.get(section, {}).get("options", {})

imports = {}
for path in req["imports"]:
    try:
        import_string(path)
        imports[path] = None
    except Exception as exc:
        imports[path] = repr(exc)

print("@@" + json.dumps({
    "commands": {" ".join(argv): check(argv) for argv in req["commands"]},
    "options": {s + "." + o: known(s, o) for s, o in req["options"]},
    "api_port": conf.getint("api", "port"),
    "scheduler_health_port": conf.getint("scheduler", "scheduler_health_check_server_port"),
    "imports": imports,
}))
"""


@pytest.fixture(scope="module")
def airflow_answers(services, tmp_path_factory) -> dict:
    commands = [argv[1:] for _, argv in _all_commands(services) if argv[0] == "airflow"]
    celery_installed = importlib.util.find_spec("airflow.providers.celery") is not None
    if not celery_installed:
        # `airflow celery ...` exists only with the Celery provider, a dependency since ADR 0017: a
        # virtualenv from before it skips those commands; test_celery_profile checks the pins.
        commands = [c for c in commands if c[:1] != ["celery"]]
    env_value = {k: v for svc in services.values() for k, v in _env(svc).items()}
    imports = [_interpolate(env_value["AIRFLOW__CORE__AUTH_MANAGER"])]
    if celery_installed:
        # The workers' Celery app imports with the pinned celery (5.7.0 dropped a function it imports).
        imports.append("airflow.providers.celery.executors.celery_executor.app")
    request = {
        "commands": commands,
        "options": sorted(_airflow_options(services)),
        "imports": imports,
    }
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor" if celery_installed else "LocalExecutor",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _AIRFLOW_PROBE], input=json.dumps(request), env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("@@"))
    return json.loads(line[2:])


# --- commands --------------------------------------------------------------------------------------------


def test_every_airflow_command_is_real(airflow_answers):
    problems = {cmd: why for cmd, why in airflow_answers["commands"].items() if why}
    assert not problems, problems
    assert {"db migrate", "scheduler", "dag-processor", "triggerer"} <= {
        " ".join(c.split()[:2]) if c.startswith("db") else c.split()[0] for c in airflow_answers["commands"]
    }


def _turret_leaf(argv: list[str]) -> tuple[click.Command, list[str], str]:
    from turret.cli import cli

    cmd: click.Command = cli
    path = []
    rest = list(argv)
    while isinstance(cmd, click.Group) and rest:
        sub = cmd.get_command(click.Context(cmd), rest[0])
        assert sub is not None, f"`turret {' '.join(path + [rest[0]])}` is not a command"
        path.append(rest.pop(0))
        cmd = sub
    assert not isinstance(cmd, click.Group), f"`turret {' '.join(path)}` needs a subcommand"
    return cmd, rest, " ".join(path)


def test_every_turret_command_is_real(services):
    turret_commands = [(name, argv[1:]) for name, argv in _all_commands(services) if argv[0] == "turret"]
    assert turret_commands, "the compose file runs no turret command"
    for name, argv in turret_commands:
        cmd, rest, path = _turret_leaf(argv)
        try:
            cmd.make_context(path, list(rest))  # parses and validates the options, runs nothing
        except click.ClickException as exc:
            pytest.fail(f"{name}: `turret {' '.join(argv)}`: {exc.format_message()}")


def test_other_commands_are_known(services):
    allowed = {"airflow", "turret", "python", "bash", "sh", "set", "mkdir", "chmod", "echo", "if", "then",
               "fi", "pg_isready", "redis-cli", "celery"}
    for name, argv in _all_commands(services):
        assert argv[0] in allowed, f"{name} runs {argv[0]!r}, which no test checks"
    init = services["airflow-init"]["command"]
    assert "set -euo pipefail" in init[2], "airflow-init must stop at the first failing step"


def test_warehouse_pool_matches_the_code(services):
    from turret.airflow_env import WAREHOUSE_POOL

    pools = [argv for _, argv in _all_commands(services) if argv[:3] == ["airflow", "pools", "set"]]
    assert [p[3] for p in pools] == [WAREHOUSE_POOL]


# --- settings and options ----------------------------------------------------------------------------------


def test_turret_variables_are_settings(services):
    from turret.settings import ENV_PREFIX, Settings

    names = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}
    seen = set()
    for name, svc in services.items():
        for key in _env(svc):
            if key.startswith(ENV_PREFIX):
                assert key in names, f"{name}: {key} is not a field of turret.settings.Settings"
                seen.add(key)
    dockerfile_env = set(re.findall(r"\b(TURRET_[A-Z_]+)=", DOCKERFILE.read_text()))
    assert dockerfile_env - {"TURRET_UID"} <= names
    # Every setting reaches the containers except those docker-compose fixes through the command line, and
    # `turret up`'s executor settings, which compose has in its own form (test_celery_profile).
    assert names - seen <= {"TURRET_LANDING_DIR", "TURRET_WAREHOUSE_PATH", "TURRET_PUBLISHED_DIR",
                            "TURRET_HOST", "TURRET_PORT", "TURRET_EXECUTOR", "TURRET_CELERY_WORKERS",
                            "TURRET_BROKER_URL", "TURRET_REDIS_PORT"}


def test_airflow_options_are_real(airflow_answers):
    unknown = [o for o, ok in airflow_answers["options"].items() if not ok]
    assert not unknown, f"not Airflow config options: {unknown}"
    assert all(why is None for why in airflow_answers["imports"].values()), airflow_answers["imports"]


def test_airflow_services_share_one_environment(services):
    airflow = [n for n in services if n.startswith("airflow-")]
    reference = _env(services["airflow-scheduler"])
    for name in airflow:
        env = _env(services[name])
        for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__FERNET_KEY",
                    "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__DAGS_FOLDER", "TURRET_DATABASE_URL"):
            assert env.get(key) == reference[key], (name, key)
    assert _interpolate(reference["AIRFLOW__CORE__EXECUTOR"]) == "LocalExecutor"
    assert _interpolate(reference["AIRFLOW__CORE__AUTH_MANAGER"]).endswith("SimpleAuthManager")


# --- urls, ports, volumes ----------------------------------------------------------------------------------


def _ports(svc: dict) -> list[int]:
    return [int(_interpolate(str(p)).rsplit(":", 1)[-1].split("/")[0]) for p in svc.get("ports", [])]


def _option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_ports_match_the_code(services, airflow_answers):
    from turret.settings import Settings

    ingest = services["ingest"]
    assert _ports(ingest) == [Settings().port]
    assert int(_option(ingest["command"], "--port")) == Settings().port
    assert _option(ingest["command"], "--host") == "0.0.0.0"
    assert f"localhost:{Settings().port}/healthz" in " ".join(ingest["healthcheck"]["test"])

    api = services["airflow-apiserver"]
    assert _ports(api) == [airflow_answers["api_port"]]
    assert int(_option(api["command"], "--port")) == airflow_answers["api_port"]
    api_health = f"localhost:{airflow_answers['api_port']}/api/v2/monitor/health"
    assert api_health in " ".join(api["healthcheck"]["test"])
    execution = urlsplit(_env(api)["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert (execution.hostname, execution.port, execution.path) == (
        "airflow-apiserver", airflow_answers["api_port"], "/execution/"
    )
    health = " ".join(services["airflow-scheduler"]["healthcheck"]["test"])
    assert f"localhost:{airflow_answers['scheduler_health_port']}/health" in health


def test_database_urls_point_at_the_postgres_service(services):
    env = _env(services["airflow-scheduler"])
    postgres_env = _env(services["postgres"])
    airflow_db = urlsplit(_interpolate(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]))
    control_db = urlsplit(_interpolate(env["TURRET_DATABASE_URL"]))
    for url in (airflow_db, control_db):
        assert url.scheme == "postgresql+psycopg"  # psycopg 3 is the driver installed
        assert (url.hostname, url.port) == ("postgres", 5432)
        assert url.username == _interpolate(postgres_env["POSTGRES_USER"])
    assert airflow_db.path.lstrip("/") == _interpolate(postgres_env["POSTGRES_DB"])
    # Airflow otherwise derives an asyncpg URL for its async engine, and asyncpg is not installed.
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] == env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert control_db.path.lstrip("/") != airflow_db.path.lstrip("/")
    # The init script creates the control-plane database.
    init = yaml.safe_load(_raw())["configs"]["postgres-init"]["content"]
    assert f"CREATE DATABASE {control_db.path.lstrip('/')} " in _interpolate(init)
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert broker.hostname in services and broker.port == 6379


def _mounts(svc: dict) -> dict[str, str]:
    mounts = {}
    for v in svc.get("volumes", []):
        source, target = str(v).split(":")[:2]
        mounts[target] = source
    return mounts


def test_turret_home_is_one_shared_volume(compose, services):
    homes = {}
    for name, svc in services.items():
        if name in UPSTREAM:
            continue
        home = _env(svc).get("TURRET_HOME")
        assert home, f"{name} does not set TURRET_HOME"
        mounts = _mounts(svc)
        assert home in mounts, f"{name}: nothing is mounted at TURRET_HOME={home}"
        homes[name] = (home, mounts[home])
        airflow_home = _env(svc).get("AIRFLOW_HOME")
        if airflow_home:
            assert airflow_home in mounts, f"{name}: nothing is mounted at AIRFLOW_HOME={airflow_home}"
            password_file = _env(svc)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
            assert password_file.startswith(airflow_home + "/")
    assert len(set(homes.values())) == 1, homes
    (home, volume), = set(homes.values())
    assert volume in compose["volumes"]
    assert f"TURRET_HOME={home}" in DOCKERFILE.read_text()
    # Task-running services and the ingest API must all see it.
    assert {"ingest", "airflow-scheduler", "airflow-worker", "airflow-dag-processor"} <= set(homes)


def test_dags_folder_is_in_the_image(services):
    folder = _env(services["airflow-scheduler"])["AIRFLOW__CORE__DAGS_FOLDER"]
    text = DOCKERFILE.read_text()
    assert "WORKDIR /opt/turret" in text and "COPY dags dags" in text
    assert folder == "/opt/turret/dags"
    assert (ROOT / "dags").is_dir()


# --- images, profiles, health, restart --------------------------------------------------------------------


def test_every_service_uses_the_dockerfile(services):
    images = set()
    for name, svc in services.items():
        if name in UPSTREAM:
            assert ":" in svc["image"], f"{name}: pin the image tag"
            continue
        build = svc.get("build")
        assert build, f"{name} has no build section"
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        images.add(svc["image"])
    assert len(images) == 1, f"one image for all services, got {images}"


def test_dockerfile(services):
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    assert text.count("FROM ${PYTHON_IMAGE}") == 2
    torch = re.search(r"pip install --index-url https://download.pytorch.org/whl/cpu torch==([\d.]+)", text)
    assert torch and torch.group(1) == "2.13.0"
    assert "-c requirements/constraints.txt -e ." in text
    constraints = (ROOT / "requirements/constraints.txt").read_text()
    assert "torch==2.13.0" in constraints
    assert text.index("download.pytorch.org") < text.index("-c requirements/constraints.txt -e .")


def test_celery_profile(services):
    """The profile runs what `TURRET_EXECUTOR=celery turret up` runs: a redis broker, TURRET_CELERY_WORKERS
    workers of one task slot each serving the default and the warehouse queue, Celery options alike."""
    from turret import airflow_env
    from turret.services import celery_components
    from turret.settings import Settings

    assert services["redis"]["profiles"] == ["celery"]
    assert services["redis"]["image"].startswith("redis:") and "ports" not in services["redis"]
    worker = services["airflow-worker"]
    assert worker["profiles"] == ["celery"]
    assert "redis" in worker["depends_on"]
    settings = Settings(home=Path("/var/lib/turret"), executor="celery")
    _, up_workers = celery_components(settings, airflow_env._executor_env(settings))
    up_argv = up_workers[0].argv
    command = [_interpolate(a) for a in worker["command"]]
    assert command[:3] == ["airflow", "celery", "worker"] and up_argv[1:3] == ["celery", "worker"]
    assert _option(command, "--queues") == _option(up_argv, "--queues") == "default,turret_warehouse"
    replicas = int(_interpolate(str(worker["deploy"]["replicas"])))
    assert replicas == Settings().celery_workers == len(up_workers)
    assert "${TURRET_CELERY_WORKERS" in str(worker["deploy"]["replicas"])
    up_env = airflow_env._executor_env(settings)
    env = {k: _interpolate(v) for k, v in _env(worker).items()}
    assert env["AIRFLOW__CORE__EXECUTOR"] == up_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for key in ("AIRFLOW__CELERY__WORKER_CONCURRENCY", "AIRFLOW__OPERATORS__DEFAULT_QUEUE"):
        assert env[key] == up_env[key], key
    assert _option(up_argv, "--concurrency") == env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "1"
    # The broker is the redis service; the result backend, as with `turret up`, the metadata database.
    assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
    assert "AIRFLOW__CELERY__RESULT_BACKEND" not in env and "AIRFLOW__CELERY__RESULT_BACKEND" not in up_env
    # The provider is a pinned dependency (pyproject and the lock), so the image has it.
    pins = (ROOT / "pyproject.toml").read_text() + (ROOT / "requirements" / "constraints.txt").read_text()
    for package in ("apache-airflow-providers-celery", "celery", "redis"):
        assert len(re.findall(rf'^\s*"?{package}==[\d.]+', pins, re.M)) == 2, package


def test_dependencies_exist_and_respect_profiles(services):
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            conditions = ("service_healthy", "service_completed_successfully", "service_started")
            assert spec["condition"] in conditions
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy; it has none"
            # A service that always starts must not need one that only starts with a profile.
            if not svc.get("profiles"):
                assert not services[dep].get("profiles"), f"{name} depends on profiled service {dep}"


def test_health_checks_and_restart_policies(services):
    for name, svc in services.items():
        if name in ONE_SHOT:
            assert svc["restart"] == "no"
            continue
        assert "healthcheck" in svc, f"{name} has no health check"
        assert svc.get("restart") == "unless-stopped", f"{name} has no restart policy"


# --- .env.example ------------------------------------------------------------------------------------------


def _env_example() -> tuple[dict[str, str], set[str]]:
    values, commented = {}, set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        if m := re.match(r"^(\w+)=(.*)$", line):
            values[m.group(1)] = m.group(2)
        elif m := re.match(r"^#\s*(\w+)=", line):
            commented.add(m.group(1))
    return values, commented


def test_env_example_covers_every_interpolated_variable():
    used = {m.group(1) for m in INTERPOLATION.finditer(_raw().replace("$$", "\0"))}
    values, _ = _env_example()
    missing = used - set(values)
    assert not missing, f".env.example lacks {sorted(missing)}"
    unused = set(values) - used
    assert not unused, f".env.example sets variables docker-compose.yml never reads: {sorted(unused)}"
    # Required variables (${VAR:?...}) are secrets the operator must fill in.
    required = {m.group(1) for m in INTERPOLATION.finditer(_raw()) if m.group(2) == ":?"}
    assert required == {
        "POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY"
    }


def test_env_example_lists_every_setting_and_keeps_secrets_empty():
    from turret.settings import ENV_PREFIX, Settings

    values, commented = _env_example()
    for f in dataclasses.fields(Settings):
        name = ENV_PREFIX + f.name.upper()
        assert name in values or name in commented, f".env.example has no line for {name}"
    for key, value in values.items():
        if re.search(r"PASSWORD|SECRET|API_KEY|FERNET", key):
            assert value == "", f"{key} must be empty in .env.example"
    assert values["AIRFLOW_EXECUTOR"] in ("LocalExecutor", "CeleryExecutor")


def test_image_switches_every_tools_usage_reporting_off():
    """The compose file's Airflow processes start without turret.airflow_env: the image itself carries
    turret.telemetry's switches."""
    from turret.telemetry import TELEMETRY_OFF

    text = DOCKERFILE.read_text()
    runtime = text[text.rindex("\nFROM "):]  # the image's last stage: what containers run
    for key, value in TELEMETRY_OFF.items():
        assert re.search(rf"^\s*(ENV\s+)?{key}={re.escape(value)}(\s|$)", runtime, re.M), key


def test_the_exposed_ingest_api_is_the_slow_client_proof_server(services):
    """The compose file exposes `turret serve` itself (gunicorn's asyncio worker in front of the app, as
    tests/ingest_api/test_slow_clients.py measures), not a server of its own choosing."""
    import turret.gunicorn_conf as conf

    command = services["ingest"]["command"]
    assert command[:2] == ["turret", "serve"]
    assert not {"--worker-class", "-k", "--threads"} & set(command)
    assert conf.worker_class == "asgi"
