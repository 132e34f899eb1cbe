#!/usr/bin/env python3
"""Checks real answers of the coordinator against docs/openapi.yaml.

Usage: openapi_validate.py SPEC ANSWERS

ANSWERS holds one JSON object a line, as tests/coordinator/openapi_responses_test.cpp
records them: {"method": "get", "path": "/api/v1/releases/{id}" (the template),
"status": 200, "content_type": "application/json", "body": <the JSON body>}.

For each answer the spec must list the route and the status, with an
application/json schema, and the body must validate against it (JSON Schema
2020-12, the dialect of OpenAPI 3.1, with python3-jsonschema). Every problem
is printed; the exit status is 1 when there was one, 0 otherwise.
"""
import json
import sys

import jsonschema
import yaml


def schema_of(spec, method, path, status):
    """The JSON schema of an answer, or an error message."""
    item = spec.get("paths", {}).get(path)
    if item is None:
        return None, f"{method.upper()} {path}: no such path in the spec"
    operation = item.get(method)
    if operation is None:
        return None, f"{method.upper()} {path}: no such method in the spec"
    response = operation.get("responses", {}).get(str(status))
    if response is None:
        return None, f"{method.upper()} {path}: the spec does not list status {status}"
    ref = response.get("$ref")
    if ref is not None:
        response = spec["components"]["responses"][ref.rsplit("/", 1)[1]]
    media = response.get("content", {}).get("application/json")
    if media is None or "schema" not in media:
        return None, f"{method.upper()} {path} {status}: no application/json schema in the spec"
    return media["schema"], None


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    problems = []
    checked = 0
    with open(argv[2], encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            answer = json.loads(line)
            method, path, status = answer["method"], answer["path"], answer["status"]
            where = f"answer {number}: {method.upper()} {path} {status}"
            if answer.get("content_type", "").split(";")[0] != "application/json":
                problems.append(f"{where}: Content-Type {answer.get('content_type')!r}, "
                                "not application/json")
            schema, error = schema_of(spec, method, path, status)
            if error:
                problems.append(f"answer {number}: {error}")
                continue
            # $refs point into the spec's components: give the schema its document.
            root = dict(schema)
            root["components"] = spec["components"]
            validator = jsonschema.Draft202012Validator(root)
            for failure in sorted(validator.iter_errors(answer["body"]), key=str):
                location = "/".join(str(p) for p in failure.absolute_path) or "(the body)"
                problems.append(f"{where}: at {location}: {failure.message}")
            checked += 1
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{checked} answers checked against {argv[1]}, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
