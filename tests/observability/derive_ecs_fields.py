"""Derive observability/schema/ecs-<version>-fields.json from Elastic's field reference.

    git clone https://github.com/elastic/ecs && git -C ecs show v8.17.0:generated/ecs/ecs_flat.yml > ecs_flat.yml
    python -m tests.observability.derive_ecs_fields ecs_flat.yml 8.17.0

Keeps, for each field, its type; the fields that are arrays (`normalize: [array]`); and the
allowed values of the categorization fields. The ECS test checks every emitted field
against the file (tests/observability/test_ecs.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "observability" / "schema"


def derive(flat: dict, version: str) -> dict:
    return {
        "ecs_version": version,
        "source": f"https://github.com/elastic/ecs/blob/v{version}/generated/ecs/ecs_flat.yml",
        "fields": {name: field["type"] for name, field in sorted(flat.items())},
        "arrays": sorted(n for n, f in flat.items() if "array" in (f.get("normalize") or [])),
        "allowed_values": {
            name: [value["name"] for value in field["allowed_values"]]
            for name, field in sorted(flat.items())
            if field.get("allowed_values")
        },
    }


def main(path: str, version: str) -> None:
    flat = yaml.safe_load(Path(path).read_text())
    target = SCHEMA_DIR / f"ecs-{version}-fields.json"
    target.write_text(json.dumps(derive(flat, version), indent=0, sort_keys=False) + "\n")
    print(f"{target}: {len(flat)} fields")


if __name__ == "__main__":
    main(*sys.argv[1:3])
