"""Checks a FHIR R4 Bundle the way a receiving system would (tests only).

Validation is fhir.resources' R4B models: the package's default models are R5 since 7.x, and
R4B is the R4 line's technical correction (the same resources, elements and cardinalities
for everything exported here: Patient, Practitioner, Appointment, QuestionnaireResponse,
Observation, Flag), kept as a subpackage of the maintained release. Pinning an old 6.x
release for its R4 default would tie the tests to an unmaintained pydantic-1 line.

What the models do not check is checked here: the JSON rules (no empty array, object or
string: R4 "JSON representation", 2.6.2) and that every reference resolves to an entry of
the Bundle (R4 Bundle, "Resolving references in Bundles": a relative reference against the
referencing entry's fullUrl base; an absolute or urn: reference against fullUrl as is)."""

from __future__ import annotations

import re
from typing import Any

from fhir.resources.R4B.bundle import Bundle

_RELATIVE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def empty_values(node: Any, path: str = "") -> list[str]:
    """Where the JSON holds an empty array, object or string (each invalid in FHIR)."""
    if node in ([], {}, ""):
        return [path or "(root)"]
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in empty_values(v, f"{path}.{k}".lstrip("."))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in empty_values(v, f"{path}[{i}]")]
    return []


def references(node: Any) -> list[str]:
    """Every `reference` string in a resource."""
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return own + [r for v in node.values() for r in references(v)]
    if isinstance(node, list):
        return [r for v in node for r in references(v)]
    return []


def unresolved_references(bundle: dict) -> list[str]:
    urls = {e["fullUrl"] for e in bundle.get("entry", [])}
    missing = []
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        own = f"{resource['resourceType']}/{resource['id']}"
        base = entry["fullUrl"][: -len(own)] if entry["fullUrl"].endswith(own) else None
        for ref in references(resource):
            target = base + ref if _RELATIVE.match(ref) and base is not None else ref
            if target not in urls:
                missing.append(f"{own} -> {ref}")
    return missing


def validate_r4(bundle: dict) -> Bundle:
    """The Bundle parsed by the R4B models; AssertionError naming what is wrong otherwise."""
    parsed = Bundle.model_validate(bundle)  # raises pydantic's ValidationError, with paths
    assert empty_values(bundle) == [], f"empty values: {empty_values(bundle)}"
    assert unresolved_references(bundle) == [], (
        f"references not in the Bundle: {unresolved_references(bundle)}"
    )
    full_urls = [e["fullUrl"] for e in bundle.get("entry", [])]
    assert len(full_urls) == len(set(full_urls)), "two entries share a fullUrl"
    return parsed
