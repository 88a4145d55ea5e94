"""The deployment files: the Kubernetes overlay renders (deploy/kustomize.py) into manifests
valid against the Kubernetes API schemas, wired together (probes, selectors, references), and
the systemd units start what exists."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from deploy.kustomize import merge, render

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.30.0"
# Made by the CloudNativePG operator from the Cluster resource.
OPERATOR_SECRETS = {"stuudium-pg-app"}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(ROOT / "deploy/k8s/overlays/example")


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def _pod_specs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    specs = []
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            specs.append(d["spec"]["template"]["spec"])
        elif d["kind"] == "CronJob":
            specs.append(d["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return specs


def test_every_builtin_manifest_is_valid(docs):
    builtin = [
        d
        for d in docs
        if "." not in d["apiVersion"].split("/")[0]
        or d["apiVersion"].split("/")[0].endswith(".k8s.io")
    ]
    assert len(builtin) >= 18
    for doc in builtin:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    broken = merge(_one(docs, "Deployment", "stuudium-idp"), {"spec": {"replicas": "many"}})
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_idp_scales_out_with_probes_budget_and_autoscaler(docs):
    idp = _one(docs, "Deployment", "stuudium-idp")
    assert idp["spec"]["replicas"] == 4 and idp["metadata"]["namespace"] == "stuudium-example"
    [container] = idp["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.ee/stuudium/stuudium-id:2026.11.1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["cpu"] == "2"  # the overlay's patch
    assert container["resources"]["limits"]["memory"] == "1Gi"  # the base's, kept
    labels = idp["spec"]["template"]["metadata"]["labels"]
    pdb = _one(docs, "PodDisruptionBudget", "stuudium-idp")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < idp["spec"]["replicas"]
    hpa = _one(docs, "HorizontalPodAutoscaler", "stuudium-idp")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "stuudium-idp"
    assert hpa["spec"]["minReplicas"] >= 2
    worker = _one(docs, "Deployment", "stuudium-idp-worker")
    assert worker["spec"]["replicas"] >= 2
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"] == ["idp", "worker"]
    rotation = _one(docs, "CronJob", "stuudium-key-rotation")
    assert rotation["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "idp",
        "keys",
        "rotate",
    ]


def test_services_ingress_and_references_meet(docs):
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    }
    for svc in (d for d in docs if d["kind"] == "Service"):
        selector = svc["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pods.values()), svc
    ingress = _one(docs, "Ingress", "stuudium")
    hosts = {
        r["host"]: r["http"]["paths"][0]["backend"]["service"]["name"]
        for r in ingress["spec"]["rules"]
    }
    assert hosts == {"id.stuudium.ee": "stuudium-idp", "*.stuudium.ee": "stuudium-school"}
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for spec in _pod_specs(docs):
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert ("ConfigMap", source["configMapRef"]["name"]) in names
                if "secretRef" in source:
                    assert ("Secret", source["secretRef"]["name"]) in names
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in OPERATOR_SECRETS or ("Secret", ref["name"]) in names
    cluster = _one(docs, "Cluster", "stuudium-pg")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1" and cluster["spec"]["instances"] >= 3
    config = _one(docs, "ConfigMap", "stuudium-config")["data"]
    assert config["REDIS_URL"].startswith("redis+sentinel://stuudium-redis-sentinel:26379/")
    assert config["IDP_ISSUER"].startswith("https://") and config["STUUDIUM_PROXY_COUNT"] == "1"


def test_a_patch_must_match_one_resource(tmp_path):
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [../base]\npatches: [{path: p.yaml}]\n".replace(
            "../base", str(ROOT / "deploy/k8s/base")
        )
    )
    (tmp_path / "p.yaml").write_text("kind: Deployment\nmetadata: {name: nothing}\n")
    with pytest.raises(ValueError, match="matches 0"):
        render(tmp_path)


def test_systemd_units_start_what_exists():
    units = sorted((ROOT / "deploy/systemd").glob("*.service"))
    assert {u.name for u in units} == {
        "stuudium-idp.service",
        "stuudium-idp-worker.service",
        "stuudium-school.service",
        "stuudium-key-rotation.service",
    }
    timer = configparser.ConfigParser(strict=False)
    timer.read(ROOT / "deploy/systemd/stuudium-key-rotation.timer")
    assert timer["Timer"]["OnCalendar"]
    for unit in units:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read(unit)
        argv = shlex.split(parser["Service"]["ExecStart"])
        assert argv[0].startswith("/opt/stuudium/.venv/bin/")
        if argv[0].endswith("gunicorn"):
            assert argv[1] == "-c" and (ROOT / argv[2].removeprefix("/opt/stuudium/")).is_file()
            assert argv[3] in ("idp:create_app()", "school_instance:create_app()")
        else:
            assert argv[0].endswith("/idp") and argv[1] in ("worker", "keys")
