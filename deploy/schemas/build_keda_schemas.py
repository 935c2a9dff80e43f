#!/usr/bin/env python3
"""Writes the JSON Schemas of KEDA's ScaledObject and TriggerAuthentication (keda.sh/v1alpha1)
that scripts/validate-deploy.sh checks deploy/k8s/keda/*.yaml against, since no package ships
them. `--check` compares instead of writing (the validation script runs that, so the committed
files cannot drift from this generator).

Where the pieces come from:
- The KEDA part below is transcribed from KEDA's CRDs, kedacore/keda
  config/crd/bases/keda.sh_scaledobjects.yaml and keda.sh_triggerauthentications.yaml
  (openAPIV3Schema of version v1alpha1), with the fields of KEDA 2.17+ as generated from
  kedacore/keda/v2/apis/keda/v1alpha1 into the npm package @kubernetes-models/keda 2.0.0
  (initialCooldownPeriod, fallback.behavior, advanced.scalingModifiers, useCachedMetrics ...).
  Types follow the CRD (int32 counts, string-to-string trigger metadata, required fields).
- ObjectMeta and HorizontalPodAutoscalerBehavior (with everything they reference) are copied
  from the Kubernetes schemas bundled in the PyPI package kubernetes-validate, so metadata and
  `advanced.horizontalPodAutoscalerConfig.behavior` are checked exactly like a Deployment's.

Stricter than the API server in two ways, both deliberate: unknown fields are errors (as with
`kubectl apply --validate=strict`), and a `rabbitmq` trigger must name its queue, mode and value
and use a known protocol (checks the KEDA operator would only make at run time).

    python3 deploy/schemas/build_keda_schemas.py [--kubernetes-version 1.30.0] [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
API_VERSION = "keda.sh/v1alpha1"
META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
HPA_BEHAVIOR = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerBehavior"

INT32 = {"type": "integer", "format": "int32", "minimum": -2147483648, "maximum": 2147483647}
COUNT = {"type": "integer", "format": "int32", "minimum": 0, "maximum": 2147483647}
STRING = {"type": "string"}
NAME = {"type": "string", "minLength": 1}


def obj(properties: dict, required: list[str] | None = None, description: str = "") -> dict:
    """A closed object: only `properties`, `required` ones mandatory."""
    schema: dict = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


def array_of(items: dict, min_items: int = 0) -> dict:
    schema: dict = {"type": "array", "items": items}
    if min_items:
        schema["minItems"] = min_items
    return schema


# --- ScaledObject -------------------------------------------------------------------------------

RABBITMQ_METADATA = {
    "description": "KEDA rabbitmq scaler parameters (checked by the operator at run time).",
    "required": ["queueName", "value"],
    "properties": {
        "protocol": {"enum": ["auto", "amqp", "http"]},
        "mode": {"enum": ["QueueLength", "MessageRate"]},
        "queueName": NAME,
        "value": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
        "activationValue": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
        "excludeUnacknowledged": {"enum": ["true", "false"]},
        "useRegex": {"enum": ["true", "false"]},
        "unsafeSsl": {"enum": ["true", "false"]},
    },
}

SCALE_TRIGGER = {
    "type": "object",
    "additionalProperties": False,
    "description": "ScaleTriggers reference the scaler that will be used",
    "required": ["type", "metadata"],
    "properties": {
        "type": NAME,
        "name": STRING,
        "metadata": {"type": "object", "additionalProperties": STRING},
        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
        "useCachedMetrics": {"type": "boolean"},
        "authenticationRef": obj(
            {"name": NAME, "kind": {"enum": ["TriggerAuthentication", "ClusterTriggerAuthentication"]}},
            ["name"],
            "The TriggerAuthentication or ClusterTriggerAuthentication of this trigger",
        ),
    },
    "allOf": [
        {
            "if": {"properties": {"type": {"const": "rabbitmq"}}, "required": ["type"]},
            "then": {
                "properties": {"metadata": RABBITMQ_METADATA},
                "anyOf": [
                    {"required": ["authenticationRef"]},
                    {"properties": {"metadata": {"anyOf": [{"required": ["host"]}, {"required": ["hostFromEnv"]}]}}},
                ],
            },
        }
    ],
}

SCALED_OBJECT_SPEC = obj(
    {
        "scaleTargetRef": obj(
            {"name": NAME, "apiVersion": STRING, "kind": STRING, "envSourceContainerName": STRING},
            ["name"],
            "ScaleTarget holds the reference to the scale target Object",
        ),
        "triggers": array_of({"$ref": "#/$defs/ScaleTriggers"}, min_items=1),
        "pollingInterval": COUNT,
        "cooldownPeriod": COUNT,
        "initialCooldownPeriod": COUNT,
        "idleReplicaCount": COUNT,
        "minReplicaCount": COUNT,
        "maxReplicaCount": COUNT,
        "fallback": obj(
            {
                "failureThreshold": COUNT,
                "replicas": COUNT,
                "behavior": {"enum": ["static", "currentReplicas", "currentReplicasIfHigher", "currentReplicasIfLower"]},
            },
            ["failureThreshold", "replicas"],
            "Fallback is the spec for fallback options",
        ),
        "advanced": obj(
            {
                "restoreToOriginalReplicaCount": {"type": "boolean"},
                "horizontalPodAutoscalerConfig": obj(
                    {"name": STRING, "behavior": {"$ref": f"#/$defs/{HPA_BEHAVIOR}"}},
                    description="HorizontalPodAutoscalerConfig specifies horizontal scale config",
                ),
                "scalingModifiers": obj(
                    {"formula": STRING, "target": STRING, "activationTarget": STRING, "metricType": STRING},
                    description="ScalingModifiers describes advanced scaling logic options like formula",
                ),
            },
            description="AdvancedConfig specifies advance scaling options",
        ),
    },
    ["scaleTargetRef", "triggers"],
    "ScaledObjectSpec is the spec for a ScaledObject resource",
)

# --- TriggerAuthentication ----------------------------------------------------------------------

TARGET_REF = obj({"parameter": NAME, "name": NAME, "key": NAME}, ["parameter", "name", "key"])
POD_IDENTITY = obj(
    {
        "provider": NAME,
        "identityId": STRING,
        "identityTenantId": STRING,
        "identityAuthorityHost": STRING,
        "identityOwner": {"enum": ["keda", "workload"]},
        "roleArn": STRING,
    },
    ["provider"],
    "AuthPodIdentity allows users to select the platform native identity mechanism",
)
# The secret stores' own fields are many and provider-specific: only their shape is checked.
SECRET_STORE = {"type": "object"}

TRIGGER_AUTHENTICATION_SPEC = obj(
    {
        "secretTargetRef": array_of(TARGET_REF),
        "configMapTargetRef": array_of(TARGET_REF),
        "env": array_of(obj({"parameter": NAME, "name": NAME, "containerName": STRING}, ["parameter", "name"])),
        "boundServiceAccountToken": array_of(
            obj({"parameter": NAME, "serviceAccountName": NAME}, ["parameter", "serviceAccountName"])
        ),
        "podIdentity": POD_IDENTITY,
        "filePath": STRING,
        "hashiCorpVault": SECRET_STORE,
        "azureKeyVault": SECRET_STORE,
        "awsSecretManager": SECRET_STORE,
        "gcpSecretManager": SECRET_STORE,
    },
    description="TriggerAuthenticationSpec defines the various ways to authenticate",
)


def top(kind: str, spec_ref: str, description: str) -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"KEDA {kind} ({API_VERSION})",
        "description": description,
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": kind},
            "metadata": {"$ref": f"#/$defs/{META}"},
            "spec": {"$ref": spec_ref},
            "status": {"type": "object"},
        },
    }


def kubernetes_definitions(version: str) -> dict:
    """The strict `$defs` kubernetes-validate bundles for `version`."""
    from importlib.resources import files

    path = files("kubernetes_validate").joinpath(f"kubernetes-json-schema/v{version}-local-strict/_definitions.json")
    return json.loads(path.read_text())["$defs"]


def closure(defs: dict, roots: list[str]) -> dict:
    """`roots` and every definition they reference (`#/$defs/NAME`), transitively."""
    out: dict = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out[name] = defs[name]
        todo.extend(refs(defs[name]))
    return dict(sorted(out.items()))


def refs(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                found.append(value.removeprefix("#/$defs/"))
            else:
                found.extend(refs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(refs(value))
    return found


def build(version: str) -> dict[str, dict]:
    k8s = kubernetes_definitions(version)
    source = (
        "Derived from KEDA's CRD (kedacore/keda config/crd/bases) and API types (npm "
        "@kubernetes-models/keda 2.0.0); Kubernetes definitions from kubernetes-validate "
        f"(Kubernetes {version}). Generated by deploy/schemas/build_keda_schemas.py: edit that."
    )
    scaled = top("ScaledObject", "#/$defs/ScaledObjectSpec", source)
    scaled["$defs"] = {
        "ScaledObjectSpec": SCALED_OBJECT_SPEC,
        "ScaleTriggers": SCALE_TRIGGER,
        **closure(k8s, [META, HPA_BEHAVIOR]),
    }
    auth = top("TriggerAuthentication", "#/$defs/TriggerAuthenticationSpec", source)
    auth["$defs"] = {"TriggerAuthenticationSpec": TRIGGER_AUTHENTICATION_SPEC, **closure(k8s, [META])}
    return {
        "keda.sh-v1alpha1-scaledobject.json": scaled,
        "keda.sh-v1alpha1-triggerauthentication.json": auth,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", default="1.30.0")
    parser.add_argument("--check", action="store_true", help="compare with the committed files")
    args = parser.parse_args()
    stale = []
    for name, schema in build(args.kubernetes_version).items():
        text = json.dumps(schema, indent=2, sort_keys=False) + "\n"
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parent.parent)}")
    if stale:
        print(
            f"error: {', '.join(stale)} differ from what deploy/schemas/build_keda_schemas.py makes; "
            "run it (without --check) and commit the result",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
