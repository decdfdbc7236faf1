"""The cluster deployment files in workers/ parse and carry what they must."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import ray
import yaml

WORKERS = Path(__file__).resolve().parent.parent / "workers"


def test_cluster_launcher_config_matches_rays_schema():
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load((WORKERS / "cluster.yaml").read_text())
    jsonschema.validate(config, schema)
    assert any("127.0.0.1" in c for c in config["head_start_ray_commands"]), "dashboard must stay on loopback"
    assert config["file_mounts"]["~/vstream-runtime-deps.txt"] == "workers/runtime-deps.txt"


def test_kuberay_manifest_has_the_required_fields():
    manifest = yaml.safe_load((WORKERS / "raycluster.yaml").read_text())
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayCluster"
    head = manifest["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == "127.0.0.1"
    groups = manifest["spec"]["workerGroupSpecs"]
    assert groups and all(g["template"]["spec"]["containers"][0]["image"] for g in groups)
    assert all(g["minReplicas"] <= g["replicas"] <= g["maxReplicas"] for g in groups)
    version = manifest["spec"]["rayVersion"]
    images = [head["template"]["spec"]["containers"][0]["image"]] + [g["template"]["spec"]["containers"][0]["image"] for g in groups]
    assert all(image.startswith(f"rayproject/ray:{version}") for image in images)


def test_runtime_deps_cover_what_the_actors_import():
    deps = {line.split(">")[0].split("=")[0].strip() for line in (WORKERS / "runtime-deps.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")}
    assert {"numpy", "onnxruntime"} <= deps
    kube = (WORKERS / "raycluster.yaml").read_text()
    assert all(dep in kube for dep in deps)
