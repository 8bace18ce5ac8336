"""Validates FHIR XML documents against the official FHIR STU3 XML schema (fhir-single.xsd,
with its xhtml and xml.xsd imports), independently of ssp-sim: element names, their order,
cardinality and the value formats the schema fixes.

Usage: validate_xsd.py SCHEMA_DIR, with a JSON array of [label, xml text] pairs on standard
input; prints one line per document that fails, and `validated N of M` at the end. Exit
status 1 when any fails.
"""

import json
import sys
from pathlib import Path

from lxml import etree


def main():
    schema = etree.XMLSchema(etree.parse(str(Path(sys.argv[1]) / "fhir-single.xsd")))
    items = json.load(sys.stdin)
    failed = 0
    for label, text in items:
        try:
            document = etree.fromstring(text.encode("utf-8"))
        except etree.XMLSyntaxError as error:
            failed += 1
            print(f"FAIL {label}: not well-formed XML: {error}")
            continue
        if not schema.validate(document):
            failed += 1
            errors = "; ".join(f"line {e.line}: {e.message}" for e in schema.error_log)
            print(f"FAIL {label}: {errors}")
    print(f"validated {len(items) - failed} of {len(items)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
