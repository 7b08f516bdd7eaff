#!/usr/bin/env python3
"""Validates Firecracker --config-file documents against FullVmConfiguration.

    validate_firecracker_config.py firecracker.yaml CONFIG.json [CONFIG.json...]

The schema is Firecracker's OpenAPI (swagger 2.0) definition; its
`definitions` are JSON Schema draft 4. Validation is strict: an object
definition that does not say otherwise gets additionalProperties: false, so
a misspelt key ("boot_source") fails as Firecracker's own parser (serde with
deny_unknown_fields) would. Exit status 0 when every document is valid, 1
otherwise (each error printed), 2 on bad usage.
"""
import copy
import json
import sys

import jsonschema
import yaml


def strict(node):
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        api = yaml.safe_load(f)
    definitions = copy.deepcopy(api["definitions"])
    strict(definitions)
    schema = {"$ref": "#/definitions/FullVmConfiguration", "definitions": definitions}
    validator = jsonschema.Draft4Validator(schema)
    bad = 0
    for path in argv[2:]:
        with open(path) as f:
            doc = json.load(f)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        for e in errors:
            where = "/".join(str(p) for p in e.absolute_path) or "(document)"
            print(f"{path}: {where}: {e.message}")
        bad += bool(errors)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
