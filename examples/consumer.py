#!/usr/bin/env python3
"""A GP Connect consumer talking through ssp-sim, with Python's requests.

Copy it as the start of your own consumer. It reads the CapabilityStatement, finds a patient
by NHS number, searches free slots and books one, and reads one SSP error (a wrong Ssp-To) from
its OperationOutcome.

    pip install requests
    python3 examples/consumer.py [--ssp https://localhost:8443] [--certs certs]

Settings come from flags, else the environment (SSP_SIM_URL, SSP_SIM_CERTS, GPC_ROOT,
SSP_FROM, SSP_TO), else the defaults of the shipped routes.toml and of `cargo run`, which
writes the certificates to certs/.
"""

import argparse
import base64
import datetime
import json
import os
import sys
import time
import uuid

import requests

GPC = "urn:nhs:names:services:gpconnect:fhir:"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"


def settings():
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ssp", default=env("SSP_SIM_URL", "https://localhost:8443"),
                        help="the SSP's address (ssp-sim's HTTPS listener)")
    parser.add_argument("--certs", default=env("SSP_SIM_CERTS", "certs"),
                        help="folder with ca.pem, client.pem and client-key.pem")
    parser.add_argument("--root", default=env("GPC_ROOT",
                        "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect"),
                        help="the provider's service root, as the SDS registers it")
    parser.add_argument("--from-asid", default=env("SSP_FROM", "200000000359"))
    parser.add_argument("--to-asid", default=env("SSP_TO", "918999198738"))
    parser.add_argument("--nhs-number", default="9476719931")
    return parser.parse_args()


def b64url(value):
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def jwt(aud, scope):
    """The GP Connect 1.x access token: unsigned (alg none), valid for exactly 300 seconds,
    naming the consumer system, organisation, device and user (GP Connect's JWT page)."""
    now = int(time.time())
    user = "10019"
    claims = {
        "iss": "https://consumer.example.nhs.uk/",
        "sub": user,
        "aud": aud,
        "exp": now + 300,
        "iat": now,
        "reason_for_request": "directcare",
        "requested_scope": scope,
        "requesting_device": {
            "resourceType": "Device",
            "identifier": [{"system": "https://consumer.example.nhs.uk/Id/device-identifier",
                            "value": "example-consumer"}],
            "model": "example consumer", "version": "1.0",
        },
        "requesting_organization": {
            "resourceType": "Organization",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code",
                            "value": "A11111"}],
            "name": "Example consumer organisation",
        },
        "requesting_practitioner": {
            "resourceType": "Practitioner",
            "id": user,
            "identifier": [
                {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "UNK"},
                {"system": "https://fhir.nhs.uk/Id/sds-role-profile-id", "value": "UNK"},
                {"system": "https://consumer.example.nhs.uk/Id/user-id", "value": user},
            ],
            "name": [{"family": "Jones", "given": ["Claire"], "prefix": ["Dr"]}],
        },
    }
    return b64url({"alg": "none", "typ": "JWT"}) + "." + b64url(claims) + "."


class Ssp:
    """Sends GP Connect calls through the SSP: mutual TLS, the Ssp-* headers and a JWT."""

    def __init__(self, args):
        self.args = args
        self.session = requests.Session()
        # The CA is given to each request (verify=), not by REQUESTS_CA_BUNDLE, which would
        # replace the CA bundle of every request of the process, and not on the session
        # (session.verify), which requests ignores whenever REQUESTS_CA_BUNDLE or
        # CURL_CA_BUNDLE is set in the environment.
        self.ca = os.path.join(args.certs, "ca.pem")
        self.session.cert = (os.path.join(args.certs, "client.pem"),
                             os.path.join(args.certs, "client-key.pem"))

    def call(self, method, interaction, path, scope, to_asid=None, **kwargs):
        # The SSP's URL is its address, then the provider's whole URL: joined as strings,
        # never with urllib.parse.urljoin, which would collapse the `//` after `https:`.
        url = self.args.ssp.rstrip("/") + "/" + self.args.root + path
        headers = {
            "Ssp-TraceID": str(uuid.uuid4()),
            "Ssp-From": self.args.from_asid,
            "Ssp-To": to_asid or self.args.to_asid,
            "Ssp-InteractionID": GPC + interaction,
            "Authorization": "Bearer " + jwt(self.args.root, scope),
            "Accept": "application/fhir+json",
        }
        if "json" in kwargs:
            headers["Content-Type"] = "application/fhir+json"
            kwargs["data"] = json.dumps(kwargs.pop("json"))
        return self.session.request(method, url, headers=headers, verify=self.ca, timeout=30,
                                    **kwargs)


def expect(response, status, step):
    if response.status_code != status:
        sys.exit(f"{step}: expected HTTP {status}, got {response.status_code}: {response.text}")
    return response.json()


def resources(bundle, kind):
    return [e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == kind]


def main():
    args = settings()
    ssp = Ssp(args)

    capability = expect(ssp.call("GET", "rest:read:metadata-1", "/metadata",
                                 "organization/*.read"), 200, "metadata")
    print(f"metadata: {capability['resourceType']} version {capability['version']}")

    found = expect(ssp.call("GET", "rest:search:patient-1", "/Patient", "patient/*.read",
                            params={"identifier": f"{NHS_NUMBER}|{args.nhs_number}"}),
                   200, "find a patient")
    patients = resources(found, "Patient")
    if not patients:
        sys.exit(f"find a patient: no active patient with NHS number {args.nhs_number}")
    patient = patients[0]["id"]
    print(f"patient: Patient/{patient}")

    today = datetime.date.today()
    free = expect(ssp.call("GET", "rest:search:slot-1", "/Slot", "organization/*.read", params=[
        ("start", f"ge{today + datetime.timedelta(days=1)}"),
        ("end", f"le{today + datetime.timedelta(days=7)}"),
        ("status", "free"),
        ("_include", "Slot:schedule"),
    ]), 200, "search free slots")
    slots = resources(free, "Slot")
    if not slots:
        sys.exit("search free slots: none in the next 7 days")
    slot = slots[0]
    print(f"slots: {len(slots)} free, the first Slot/{slot['id']} at {slot['start']}")
    # The appointment takes place where the slot's schedule is: its Location actor.
    schedule = next(s for s in resources(free, "Schedule")
                    if f"Schedule/{s['id']}" == slot["schedule"]["reference"])
    location = next(a["reference"] for a in schedule["actor"]
                    if a["reference"].startswith("Location/"))

    appointment = {
        "resourceType": "Appointment",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Appointment-1"]},
        "contained": [{"resourceType": "Organization", "id": "1", "name": "Example consumer",
                       "telecom": [{"system": "phone", "value": "0300 303 1111"}]}],
        "extension": [{
            "url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1",
            "valueReference": {"reference": "#1"},
        }],
        "status": "booked",
        "description": "Booked by the example consumer",
        "start": slot["start"],
        "end": slot["end"],
        "slot": [{"reference": f"Slot/{slot['id']}"}],
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "participant": [{"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"},
                        {"actor": {"reference": location}, "status": "accepted"}],
    }
    booked = expect(ssp.call("POST", "rest:create:appointment-1", "/Appointment",
                             "patient/*.write", json=appointment), 201, "book an appointment")
    print(f"booked: Appointment/{booked['id']} {booked['status']} at {booked['start']}")

    # An SSP error: an Ssp-To no provider is registered with. The SSP answers it itself, with
    # an OperationOutcome whose coding says what was refused.
    refused = ssp.call("GET", "rest:read:metadata-1", "/metadata", "organization/*.read",
                       to_asid="999999999999")
    outcome = refused.json()
    issue = outcome["issue"][0]
    coding = issue["details"]["coding"][0]
    print(f"ssp error: HTTP {refused.status_code} {outcome['resourceType']} "
          f"issue {issue['code']}, code {coding['code']}: {coding['display']}")
    if refused.status_code < 400:
        sys.exit("ssp error: a wrong Ssp-To was not refused")
    print("done")


if __name__ == "__main__":
    main()
