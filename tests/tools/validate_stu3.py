"""Validates FHIR STU3 JSON resources with the fhir.resources STU3 models, independently of
ssp-sim: every element must exist in its STU3 type, have the right type and cardinality, and
required elements must be present; contained and Bundle entry resources are checked too.

Reads a JSON array of [label, resource] pairs on standard input; prints one line per
resource that fails, and `validated N` at the end. Exit status 1 when any fails.
"""

import json
import sys

from fhir.resources.STU3 import get_fhir_model_class


def main():
    items = json.load(sys.stdin)
    failed = 0
    for label, resource in items:
        try:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except Exception as error:  # noqa: BLE001 - any failure is reported with its label
            failed += 1
            print(f"FAIL {label}: {error}")
    print(f"validated {len(items) - failed} of {len(items)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
