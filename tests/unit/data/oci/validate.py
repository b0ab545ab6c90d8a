#!/usr/bin/env python3
"""validate.py -- check one JSON document against the OCI image-spec schemas.

Usage: validate.py SCHEMA_DIR config|manifest|index FILE
Exit 0 when valid; 1 with the first errors on stderr otherwise; 2 on usage.
The schemas reference each other by relative names under several base ids
(https://opencontainers.org/schema/image/..., .../schema/...), so every
reference is resolved by its file name in SCHEMA_DIR, fully offline.
"""
import json
import os
import sys

import jsonschema

KINDS = {
    "config": "config-schema.json",
    "manifest": "image-manifest-schema.json",
    "index": "image-index-schema.json",
}


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in KINDS:
        print(__doc__, file=sys.stderr)
        return 2
    sdir, kind, path = sys.argv[1:]

    def load(name):
        with open(os.path.join(sdir, name), encoding="utf-8") as f:
            return json.load(f)

    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    schema = load(KINDS[kind])
    try:
        import referencing
        import referencing.jsonschema

        def retrieve(uri):
            name = uri.split("#")[0].rstrip("/").rsplit("/", 1)[-1]
            return referencing.Resource.from_contents(
                load(name), default_specification=referencing.jsonschema.DRAFT4)

        registry = referencing.Registry(retrieve=retrieve)
        validator = jsonschema.Draft4Validator(schema, registry=registry)
    except ImportError:  # older jsonschema: RefResolver with a handler
        def handler(uri):
            return load(uri.split("#")[0].rstrip("/").rsplit("/", 1)[-1])
        resolver = jsonschema.RefResolver.from_schema(
            schema, handlers={"https": handler, "http": handler})
        validator = jsonschema.Draft4Validator(schema, resolver=resolver)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    for e in errors[:5]:
        print("%s: %s: %s" % (path, "/".join(map(str, e.path)) or "<root>", e.message),
              file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
