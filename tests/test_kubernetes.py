"""The Kubernetes manifests (deploy/kubernetes/), validated offline against the Kubernetes API schemas
(kubernetes-validate, strict: an unknown or misspelt field fails), and checked against what they deploy:
the image's port and data folder, the settings the app reads, the PostgreSQL service, the Ingress's
cookie affinity, and memory for the lab count they allow.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from hyperlab.web import app as web_app

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
#: The oldest Kubernetes release still common in schools' clusters, and the newest the validator knows.
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
#: A lab process's memory, measured (docs/performance.md, "Classroom": ~32 MiB RSS each), and the web
#: process with the forkserver.
LAB_MIB, SERVER_MIB = 32, 256


def resources() -> list[dict]:
    docs = [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert docs, "no manifests in deploy/kubernetes/"
    return docs


def find(kind: str, name: str) -> dict:
    [doc] = [d for d in resources() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return float(number) * (1024 if unit == "Gi" else 1)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(version: str) -> None:
    for doc in resources():
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    """So that the test above can fail: strict validation is on and reaches into the pod template."""
    deployment = copy.deepcopy(find("Deployment", "hyperlab"))
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_the_deployment_fits_the_image_the_app_and_the_database() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    [volume_path] = re.findall(r"^VOLUME (\S+)$", dockerfile, re.MULTILINE)
    [port] = re.findall(r"^EXPOSE (\d+)$", dockerfile, re.MULTILINE)
    deployment = find("Deployment", "hyperlab")
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert pod["metadata"]["labels"].items() >= deployment["spec"]["selector"]["matchLabels"].items()
    assert [p["containerPort"] for p in container["ports"]] == [int(port)]

    # The disks volume is mounted where the image keeps its data, from a claim that exists.
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == volume_path]
    [volume] = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    assert find("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])

    env = {e["name"]: e for e in container["env"]}
    unknown = {name for name in env if name.startswith("HYPERLAB_")} - set(web_app._ENV_KEYS)
    assert not unknown, f"settings the app does not read: {unknown}"
    assert env["HYPERLAB_DATA_DIR"]["value"] == volume_path
    # PostgreSQL by its Service, with the password from the Secret the StatefulSet uses too.
    url = re.fullmatch(r"postgresql://(\w+):\$\((\w+)\)@(\w+):(\d+)/(\w+)", env["HYPERLAB_DATABASE_URL"]["value"])
    assert url, env["HYPERLAB_DATABASE_URL"]
    user, password_var, host, db_port, db_name = url.groups()
    assert list(env).index(password_var) < list(env).index("HYPERLAB_DATABASE_URL")  # $(VAR) needs it first
    service = find("Service", host)
    assert [p["port"] for p in service["spec"]["ports"]] == [int(db_port)]
    [pg] = find("StatefulSet", host)["spec"]["template"]["spec"]["containers"]
    pg_env = {e["name"]: e for e in pg["env"]}
    assert (pg_env["POSTGRES_USER"]["value"], pg_env["POSTGRES_DB"]["value"]) == (user, db_name)
    assert pg_env["POSTGRES_PASSWORD"]["valueFrom"] == env[password_var]["valueFrom"]


def test_memory_is_sized_for_the_labs_a_pod_may_run() -> None:
    [container] = find("Deployment", "hyperlab")["spec"]["template"]["spec"]["containers"]
    labs = int({e["name"]: e for e in container["env"]}["HYPERLAB_MAX_LABS"]["value"])
    need = labs * LAB_MIB + SERVER_MIB
    assert mebibytes(container["resources"]["requests"]["memory"]) >= need
    assert mebibytes(container["resources"]["limits"]["memory"]) > need
    assert container["resources"]["limits"]["cpu"] and container["resources"]["requests"]["cpu"]


def test_the_ingress_keeps_a_student_on_their_pod() -> None:
    ingress = find("Ingress", "hyperlab")
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert notes["nginx.ingress.kubernetes.io/affinity-mode"] == "persistent"
    assert notes["nginx.ingress.kubernetes.io/session-cookie-change-on-failure"] == "true"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600  # idle consoles stay open
    service = find("Service", "hyperlab")
    [rule] = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "hyperlab" and backend["port"]["name"] in [p["name"] for p in service["spec"]["ports"]]
    [container] = find("Deployment", "hyperlab")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert rule["host"] in env["HYPERLAB_ALLOWED_HOSTS"]["value"].split(","), "the app must answer the Ingress host"
