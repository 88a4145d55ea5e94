"""A small kustomize renderer for deploy/k8s (what the manifests there use: resources,
namespace, labels, images, strategic-merge patches), so the tests can validate the rendered
overlay offline without a kustomize binary. `python -m deploy.kustomize DIR` prints it."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "IngressClass",
        "PriorityClass",
    }
)


def load_documents(path: Path) -> list[Doc]:
    """The YAML documents of a file (empty ones dropped)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge, simplified: maps merge key by key, lists of named maps merge by name,
    other lists and scalars are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(x, dict) and "name" in x for x in base + patch)
    ):
        merged = [dict(x) for x in base]
        index = {x["name"]: i for i, x in enumerate(merged)}
        for item in patch:
            if item["name"] in index:
                merged[index[item["name"]]] = merge(merged[index[item["name"]]], item)
            else:
                merged.append(copy.deepcopy(item))
        return merged
    return copy.deepcopy(patch)


def _images(node: Any, images: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                name = value.rsplit(":", 1)[0] if ":" in value.rsplit("/", 1)[-1] else value
                if name in images:
                    node[key] = images[name]
            else:
                _images(value, images)
    elif isinstance(node, list):
        for item in node:
            _images(item, images)


def render(directory: Path) -> list[Doc]:
    """Render a kustomization directory into its list of resources."""
    spec = load_documents(directory / "kustomization.yaml")[0]
    docs: list[Doc] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        docs += render(target) if target.is_dir() else load_documents(target)
    for patch_entry in spec.get("patches", []):
        for patch in load_documents(directory / patch_entry["path"]):
            matches = [
                i
                for i, d in enumerate(docs)
                if d["kind"] == patch["kind"] and d["metadata"]["name"] == patch["metadata"]["name"]
            ]
            if len(matches) != 1:
                raise ValueError(f"patch {patch_entry['path']} matches {len(matches)} resources")
            docs[matches[0]] = merge(docs[matches[0]], patch)
    for group in spec.get("labels", []):
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(group["pairs"])
    images = {
        i["name"]: f"{i.get('newName', i['name'])}:{i['newTag']}" for i in spec.get("images", [])
    }
    if images:
        _images(docs, images)
    if "namespace" in spec:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = spec["namespace"]
    return docs


if __name__ == "__main__":
    yaml.safe_dump_all(render(Path(sys.argv[1])), sys.stdout, sort_keys=False)
