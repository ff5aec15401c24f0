"""Parses Prometheus text exposition (stdin) with the official Python client's parser and
prints the metric families as JSON, so the Rust tests check /metrics with a real parser:
[{"name", "type", "samples": [{"name", "labels", "value"}]}]. A parse error exits 1."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = sys.stdin.read()
try:
    families = [
        {
            "name": family.name,
            "type": family.type,
            "samples": [
                {"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples
            ],
        }
        for family in text_string_to_metric_families(text)
    ]
except Exception as err:  # the point of the check: any parse failure is a defect
    print(f"not valid Prometheus text: {err}", file=sys.stderr)
    sys.exit(1)
json.dump(families, sys.stdout)
