"""The blueprint rule of docs/service-guide.md: the reads and writes of one resource share one
Blueprint, so each path is one group (tag) of its service's OpenAPI document, whichever of
queries/ and api/ its routes are in. Read from the committed documents, which the services'
own tests keep equal to what they serve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted(ROOT.glob("services/*/openapi.json"))
METHODS = ("get", "post", "put", "patch", "delete")


def split_paths(document: dict) -> dict[str, list[str]]:
    """Each path whose operations are spread over more than one tag, with those tags."""
    split = {}
    for path, item in document["paths"].items():
        tags = {tag for method in METHODS for tag in item.get(method, {}).get("tags", [])}
        if len(tags) > 1:
            split[path] = sorted(tags)
    return split


def test_a_path_split_over_two_blueprints_is_seen():
    document = {
        "paths": {
            "/things": {"get": {"tags": ["things_reads"]}, "post": {"tags": ["things"]}},
            "/others": {"get": {"tags": ["others"]}, "put": {"tags": ["others"]}},
        }
    }
    assert split_paths(document) == {"/things": ["things", "things_reads"]}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.parent.name)
def test_the_reads_and_writes_of_a_path_share_one_blueprint(document):
    assert DOCUMENTS, "no committed OpenAPI documents found"
    assert split_paths(json.loads(document.read_text())) == {}
