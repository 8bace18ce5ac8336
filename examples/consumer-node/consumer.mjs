// A GP Connect consumer talking through ssp-sim, with fhir-kit-client on Node.js.
//
// Copy it as the start of your own consumer. It reads the CapabilityStatement, finds a patient
// by NHS number, searches free slots and books one, and reads one SSP error (a wrong Ssp-To)
// from its OperationOutcome.
//
//   npm ci
//   node consumer.mjs [--ssp https://localhost:8443] [--certs ../../certs]
//
// Settings come from flags, else the environment (SSP_SIM_URL, SSP_SIM_CERTS, GPC_ROOT,
// SSP_FROM, SSP_TO), else the defaults of the shipped routes.toml and of `cargo run`, which
// writes the certificates to certs/ at the repository root.

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { Client } from 'fhir-kit-client';
import { Agent } from 'undici';

const GPC = 'urn:nhs:names:services:gpconnect:fhir:';
const NHS_NUMBER = 'https://fhir.nhs.uk/Id/nhs-number';

const { values: args } = parseArgs({
  options: {
    ssp: { type: 'string', default: process.env.SSP_SIM_URL ?? 'https://localhost:8443' },
    certs: {
      type: 'string',
      default: process.env.SSP_SIM_CERTS ?? new URL('../../certs', import.meta.url).pathname,
    },
    root: {
      type: 'string',
      default: process.env.GPC_ROOT ?? 'https://provider.example.nhs.uk/A20047/STU3/1/gpconnect',
    },
    'from-asid': { type: 'string', default: process.env.SSP_FROM ?? '200000000359' },
    'to-asid': { type: 'string', default: process.env.SSP_TO ?? '918999198738' },
    'nhs-number': { type: 'string', default: '9476719931' },
  },
});

const b64url = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

// The GP Connect 1.x access token: unsigned (alg none), valid for exactly 300 seconds, naming
// the consumer system, organisation, device and user (GP Connect's JWT page).
function jwt(aud, scope) {
  const now = Math.floor(Date.now() / 1000);
  const user = '10019';
  const claims = {
    iss: 'https://consumer.example.nhs.uk/',
    sub: user,
    aud,
    exp: now + 300,
    iat: now,
    reason_for_request: 'directcare',
    requested_scope: scope,
    requesting_device: {
      resourceType: 'Device',
      identifier: [{ system: 'https://consumer.example.nhs.uk/Id/device-identifier', value: 'example-consumer' }],
      model: 'example consumer',
      version: '1.0',
    },
    requesting_organization: {
      resourceType: 'Organization',
      identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'A11111' }],
      name: 'Example consumer organisation',
    },
    requesting_practitioner: {
      resourceType: 'Practitioner',
      id: user,
      identifier: [
        { system: 'https://fhir.nhs.uk/Id/sds-user-id', value: 'UNK' },
        { system: 'https://fhir.nhs.uk/Id/sds-role-profile-id', value: 'UNK' },
        { system: 'https://consumer.example.nhs.uk/Id/user-id', value: user },
      ],
      name: [{ family: 'Jones', given: ['Claire'], prefix: ['Dr'] }],
    },
  };
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
}

// Mutual TLS for this client only: Node's fetch (which fhir-kit-client uses) takes an undici
// dispatcher; an https.Agent or NODE_EXTRA_CA_CERTS is not read by fetch, and
// setGlobalDispatcher would change every fetch of the process.
const dispatcher = new Agent({
  connect: {
    ca: readFileSync(join(args.certs, 'ca.pem')),
    cert: readFileSync(join(args.certs, 'client.pem')),
    key: readFileSync(join(args.certs, 'client-key.pem')),
  },
});

// The SSP's URL is its address, then the provider's whole URL, joined as strings;
// fhir-kit-client appends each request's path to baseUrl the same way.
const client = new Client({
  baseUrl: `${args.ssp.replace(/\/$/, '')}/${args.root}`,
  requestOptions: { dispatcher },
});

// The Ssp-* headers and a fresh JWT for one interaction.
function ssp(interaction, scope, toAsid = args['to-asid']) {
  return {
    headers: {
      'Ssp-TraceID': randomUUID(),
      'Ssp-From': args['from-asid'],
      'Ssp-To': toAsid,
      'Ssp-InteractionID': GPC + interaction,
      Authorization: `Bearer ${jwt(args.root, scope)}`,
      Accept: 'application/fhir+json',
    },
  };
}

const resources = (bundle, kind) =>
  (bundle.entry ?? []).map((e) => e.resource).filter((r) => r.resourceType === kind);
const day = (offset) => new Date(Date.now() + offset * 86400000).toISOString().slice(0, 10);

async function main() {
  const capability = await client.capabilityStatement(ssp('rest:read:metadata-1', 'organization/*.read'));
  console.log(`metadata: ${capability.resourceType} version ${capability.version}`);

  const found = await client.search({
    resourceType: 'Patient',
    searchParams: { identifier: `${NHS_NUMBER}|${args['nhs-number']}` },
    options: ssp('rest:search:patient-1', 'patient/*.read'),
  });
  const [patient] = resources(found, 'Patient');
  if (!patient) throw new Error(`find a patient: no active patient with NHS number ${args['nhs-number']}`);
  console.log(`patient: Patient/${patient.id}`);

  const free = await client.search({
    resourceType: 'Slot',
    searchParams: { start: `ge${day(1)}`, end: `le${day(7)}`, status: 'free', _include: 'Slot:schedule' },
    options: ssp('rest:search:slot-1', 'organization/*.read'),
  });
  const slots = resources(free, 'Slot');
  if (slots.length === 0) throw new Error('search free slots: none in the next 7 days');
  const [slot] = slots;
  console.log(`slots: ${slots.length} free, the first Slot/${slot.id} at ${slot.start}`);
  // The appointment takes place where the slot's schedule is: its Location actor.
  const schedule = resources(free, 'Schedule').find((s) => `Schedule/${s.id}` === slot.schedule.reference);
  const location = schedule.actor.map((a) => a.reference).find((r) => r.startsWith('Location/'));

  const booked = await client.create({
    resourceType: 'Appointment',
    body: {
      resourceType: 'Appointment',
      meta: { profile: ['https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Appointment-1'] },
      contained: [
        {
          resourceType: 'Organization',
          id: '1',
          name: 'Example consumer',
          telecom: [{ system: 'phone', value: '0300 303 1111' }],
        },
      ],
      extension: [
        {
          url: 'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1',
          valueReference: { reference: '#1' },
        },
      ],
      status: 'booked',
      description: 'Booked by the example consumer',
      start: slot.start,
      end: slot.end,
      slot: [{ reference: `Slot/${slot.id}` }],
      created: new Date().toISOString().replace(/\.\d{3}Z$/, '+00:00'),
      participant: [
        { actor: { reference: `Patient/${patient.id}` }, status: 'accepted' },
        { actor: { reference: location }, status: 'accepted' },
      ],
    },
    options: ssp('rest:create:appointment-1', 'patient/*.write'),
  });
  console.log(`booked: Appointment/${booked.id} ${booked.status} at ${booked.start}`);

  // An SSP error: an Ssp-To no provider is registered with. fhir-kit-client throws on a
  // non-2xx answer; the OperationOutcome is in error.response.data.
  try {
    await client.capabilityStatement(ssp('rest:read:metadata-1', 'organization/*.read', '999999999999'));
    throw new Error('ssp error: a wrong Ssp-To was not refused');
  } catch (error) {
    if (!error.response) throw error;
    const outcome = error.response.data;
    const [issue] = outcome.issue;
    const [coding] = issue.details.coding;
    console.log(
      `ssp error: HTTP ${error.response.status} ${outcome.resourceType} ` +
        `issue ${issue.code}, code ${coding.code}: ${coding.display}`,
    );
  }
  console.log('done');
}

try {
  await main();
} catch (error) {
  const detail = error.response ? ` ${JSON.stringify(error.response.data)}` : '';
  console.error(`${error.message}${detail}`);
  process.exitCode = 1;
} finally {
  await dispatcher.close();
}
