// The ssp-sim console: the admin API in a page. Everything shown that a consumer sent is put
// in the page as text (textContent / text nodes), never parsed as markup.
'use strict';

const TOKEN_KEY = 'ssp-sim-admin-token';
const MAX_ROWS = 500;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  entries: [],          // newest first
  ids: new Set(),
  selected: null,
  routes: null,
  consumers: new Map(),
  providers: new Map(),
  interactions: new Map(),
  source: null,
  retry: null,
};

// ---- small DOM helpers ------------------------------------------------------------------

/** An element with properties and children; strings become text nodes. */
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (id) => document.getElementById(id);

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function setStatus(text) {
  $('status').textContent = text;
}

function problem(text) {
  const p = $('problem');
  p.textContent = text || '';
  p.hidden = !text;
}

// ---- the admin API ----------------------------------------------------------------------

class NeedToken extends Error {}

/** Calls the admin API with the token as a header; answers the parsed JSON (or null). */
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    askToken();
    throw new NeedToken('the admin API needs its token');
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error((data && data.error) || response.status + ' ' + response.statusText);
  return data;
}

function askToken() {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $('token-form').hidden = false;
  setStatus('admin token needed');
}

// ---- names from routes.toml -------------------------------------------------------------

async function loadRoutes() {
  const routes = await api('GET', '/routes');
  state.routes = routes;
  state.consumers = new Map(routes.consumers.map((c) => [c.asid, c.name]));
  state.providers = new Map(routes.providers.map((p) => [p.asid, p.name]));
  state.interactions = new Map(routes.interactions.map((i) => [i.id, i.name]));
  return routes;
}

function party(asid, names) {
  if (!asid) return el('small', {}, '—');
  const name = names.get(asid);
  return el('span', {}, asid, name ? el('br') : null, name ? el('small', {}, name) : null);
}

function interactionName(id) {
  return (id && state.interactions.get(id)) || id || '—';
}

// ---- the live list ----------------------------------------------------------------------

function filters() {
  return {
    trace: $('f-trace').value.trim().toLowerCase(),
    asid: $('f-asid').value.trim(),
    interaction: $('f-interaction').value.trim().toLowerCase(),
    status: $('f-status').value.trim(),
    error: $('f-error').value.trim().toLowerCase(),
  };
}

function shown(entry, f) {
  const has = (value, wanted) => !wanted || String(value || '').toLowerCase().includes(wanted);
  return has(entry.trace_id, f.trace)
    && (!f.asid || String(entry.from_asid || '').includes(f.asid) || String(entry.to_asid || '').includes(f.asid))
    && (has(entry.interaction, f.interaction) || has(interactionName(entry.interaction), f.interaction))
    && (!f.status || String(entry.status === null ? 'dropped' : entry.status).startsWith(f.status))
    && has(entry.error, f.error);
}

/** `HH:MM:SS.mmm` of an RFC 3339 time (UTC, as the journal keeps it). */
function clock(at) {
  const match = /T(\d\d:\d\d:\d\d)(\.\d{1,3})?/.exec(at || '');
  return match ? match[1] + (match[2] || '') : at;
}

function row(entry) {
  const refused = entry.error || entry.status === null || entry.status >= 400;
  const tr = el('tr', {
    class: (refused ? 'refused' : 'ok') + (state.selected === entry.id ? ' selected' : ''),
    'data-id': entry.id,
    onclick: () => select(entry.id),
  },
  el('td', { class: 'time', title: entry.received_at }, clock(entry.received_at)),
  el('td', { class: 'trace', title: entry.trace_id || '' }, entry.trace_id || '—'),
  el('td', {}, party(entry.from_asid, state.consumers)),
  el('td', {}, party(entry.to_asid, state.providers)),
  el('td', {}, interactionName(entry.interaction)),
  el('td', {}, entry.method),
  el('td', { class: 'target' }, entry.target_url),
  el('td', { class: 'status' }, entry.status === null ? 'dropped' : entry.status),
  el('td', { class: 'error' }, entry.error || ''),
  el('td', {}, entry.duration_ms.toFixed(1)));
  return tr;
}

function renderRows() {
  const body = $('rows');
  clear(body);
  const f = filters();
  for (const entry of state.entries) {
    if (shown(entry, f)) body.append(row(entry));
  }
}

/** Adds entries (any order), newest first, without duplicates; keeps the list bounded. */
function add(entries) {
  let fresh = false;
  for (const entry of entries) {
    if (state.ids.has(entry.id)) continue;
    state.ids.add(entry.id);
    state.entries.push(entry);
    fresh = true;
  }
  if (!fresh) return;
  state.entries.sort((a, b) => b.id - a.id);
  for (const dropped of state.entries.splice(MAX_ROWS)) state.ids.delete(dropped.id);
  renderRows();
}

async function connect() {
  clearTimeout(state.retry);
  if (state.source) state.source.close();
  let url = '/journal/stream';
  try {
    if (state.token) {
      const ticket = await api('POST', '/journal/stream/ticket');
      url += '?ticket=' + encodeURIComponent(ticket.ticket);
    }
  } catch (e) {
    if (!(e instanceof NeedToken)) retryLater(e.message);
    return;
  }
  const source = new EventSource(url);
  state.source = source;
  source.addEventListener('entry', (event) => add([JSON.parse(event.data)]));
  source.addEventListener('lagged', (event) => {
    setStatus('live (skipped ' + JSON.parse(event.data).skipped + ' while behind)');
  });
  source.onopen = async () => {
    setStatus('live');
    // What was recorded before the stream opened; ids make the overlap harmless.
    try {
      add(await api('GET', '/journal?limit=' + MAX_ROWS));
    } catch (e) {
      problem(e.message);
    }
  };
  source.onerror = () => {
    source.close();
    retryLater('stream closed');
  };
}

function retryLater(why) {
  setStatus('reconnecting (' + why + ')…');
  state.retry = setTimeout(connect, 2000);
}

// ---- one request ------------------------------------------------------------------------

function select(id) {
  state.selected = id;
  for (const tr of $('rows').children) tr.classList.toggle('selected', Number(tr.dataset.id) === id);
  const entry = state.entries.find((e) => e.id === id);
  if (entry) showDetail(entry);
}

function verdict(ok) {
  return el('span', { class: ok ? 'good' : 'bad' }, ok ? 'pass' : 'fail');
}

function headersTable(headers) {
  if (!headers.length) return el('p', { class: 'note' }, 'none');
  return el('table', {}, el('tbody', {}, headers.map(([name, value]) => el('tr', {}, el('td', {}, name), el('td', {}, value)))));
}

function json(value) {
  return el('pre', {}, JSON.stringify(value, null, 2));
}

/** The decoded token: its header, then each claim with the rules that name it. */
function tokenView(jwt) {
  const parts = [];
  parts.push(el('h4', {}, 'JWT header'), jwt.header ? el('pre', {}, JSON.stringify(jwt.header)) : el('p', { class: 'note' }, 'did not decode'));
  const byClaim = new Map();
  const general = [];
  for (const rule of jwt.rules) {
    const root = rule.claim ? rule.claim.split(/[.[]/)[0] : null;
    if (root && jwt.claims && root in jwt.claims) {
      if (!byClaim.has(root)) byClaim.set(root, []);
      byClaim.get(root).push(rule);
    } else {
      general.push(rule);
    }
  }
  const ruleLine = (rule) => el('div', {}, el('span', { class: rule.enforced ? 'bad' : 'note' }, rule.enforced ? 'fail ' : 'notice '), el('code', {}, rule.rule), ': ', rule.message);
  parts.push(el('h4', {}, 'JWT claims'));
  if (jwt.claims) {
    parts.push(el('table', { class: 'claims' }, el('tbody', {}, Object.entries(jwt.claims).map(([name, value]) => {
      const broken = byClaim.get(name) || [];
      return el('tr', {},
        el('td', {}, el('code', {}, name)),
        el('td', {}, el('pre', {}, JSON.stringify(value, null, 2))),
        el('td', { class: 'verdict' }, broken.length ? broken.map(ruleLine) : verdict(true)));
    }))));
  } else {
    parts.push(el('p', { class: 'note' }, 'did not decode'));
  }
  if (general.length) parts.push(el('h4', {}, 'Other rules broken'), general.map(ruleLine));
  else if (!jwt.rules.length) parts.push(el('p', { class: 'good' }, 'every JWT rule passed'));
  return parts.flat();
}

function showDetail(entry) {
  const aside = $('detail');
  clear(aside);
  aside.hidden = false;
  aside.append(
    el('h2', {}, entry.method, ' ', entry.target_url),
    el('dl', {},
      el('dt', {}, 'trace id'), el('dd', {}, entry.trace_id || '—'),
      el('dt', {}, 'received'), el('dd', {}, entry.received_at),
      el('dt', {}, 'from'), el('dd', {}, party(entry.from_asid, state.consumers)),
      el('dt', {}, 'to'), el('dd', {}, party(entry.to_asid, state.providers)),
      el('dt', {}, 'interaction'), el('dd', {}, interactionName(entry.interaction), el('br'), el('small', {}, entry.interaction || '')),
      el('dt', {}, 'status'), el('dd', {}, entry.status === null ? 'dropped' : entry.status),
      el('dt', {}, 'error'), el('dd', {}, entry.error || '—'),
      el('dt', {}, 'duration'), el('dd', {}, entry.duration_ms.toFixed(2) + ' ms')),
    el('h3', {}, 'Checks, in order'),
    el('ol', { class: 'checks' }, entry.checks.map((c) => el('li', {}, el('code', {}, c.name), ' ', verdict(c.ok), c.detail ? ': ' : '', c.detail || ''))));
  const details = entry.details;
  if (details) {
    if (details.jwt) aside.append(el('h3', {}, 'JWT, decoded from Authorization'), ...tokenView(details.jwt));
    if (details.outcome) aside.append(el('h3', {}, 'Error payload'), json(details.outcome));
    aside.append(failForm(entry));
    aside.append(el('h3', {}, 'Request headers'), el('p', { class: 'note' }, 'Authorization is never shown: its token is decoded above.'), headersTable(details.request_headers));
    aside.append(el('h3', {}, 'Response headers'), headersTable(details.response_headers));
  } else {
    aside.append(el('p', { class: 'note' }, 'Headers, the decoded JWT and the error payload are kept only when ssp-sim runs with journal_details = true (ssp-sim.toml or SSP_SIM_JOURNAL_DETAILS).'));
    aside.append(failForm(entry));
  }
}

/** "Make this fail": a fault for the same sender, receiver and interaction. */
function failForm(entry) {
  const match = {};
  if (entry.from_asid) match.from_asid = entry.from_asid;
  if (entry.to_asid) match.to_asid = entry.to_asid;
  if (entry.interaction && state.interactions.has(entry.interaction)) match.interaction = entry.interaction;
  const errors = (state.routes ? state.routes.errors : []).map((e) => el('option', { value: e.id }, e.status + ' ' + e.id + ' (' + e.source + ')'));
  const kind = el('select', { name: 'kind' },
    el('option', { value: 'error' }, 'answer with error'),
    el('option', { value: 'delay' }, 'delay (ms)'),
    el('option', { value: 'drop' }, 'drop the connection'),
    el('option', { value: 'status' }, 'answer with status'));
  const error = el('select', { name: 'error' }, errors);
  const number = el('input', { name: 'value', type: 'number', min: 0, value: 2000, hidden: true });
  const times = el('input', { name: 'times', type: 'number', min: 1, value: 1, title: 'times' });
  const result = el('span', { class: 'result' });
  kind.addEventListener('change', () => {
    error.hidden = kind.value !== 'error';
    number.hidden = !(kind.value === 'delay' || kind.value === 'status');
    if (kind.value === 'status') number.value = 500;
    if (kind.value === 'delay') number.value = 2000;
  });
  const form = el('form', { class: 'fail-form' }, kind, error, number, el('label', {}, 'times ', times), el('button', { type: 'submit' }, 'Add fault'), result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const respond = {
      error: { error: error.value },
      delay: { delay_ms: Number(number.value) },
      drop: { drop: true },
      status: { status: Number(number.value) },
    }[kind.value];
    try {
      const added = await api('POST', '/faults', { match, respond, times: Number(times.value) });
      result.textContent = added.id + ' added';
      result.className = 'result good';
    } catch (e) {
      result.textContent = e.message;
      result.className = 'result bad';
    }
  });
  return el('div', { class: 'make-fail' },
    el('h3', {}, 'Make this fail'),
    el('p', { class: 'note' }, 'The next matching request (' + (Object.entries(match).map(([k, v]) => k + ' ' + v).join(', ') || 'any request') + ') gets:'),
    form);
}

// ---- faults -----------------------------------------------------------------------------

async function showFaults() {
  const body = $('fault-rows');
  const faults = await api('GET', '/faults');
  clear(body);
  if (!faults.length) body.append(el('tr', {}, el('td', { colspan: 8, class: 'note' }, 'no faults installed')));
  for (const fault of faults) {
    const remove = el('button', { type: 'button' }, 'Delete');
    remove.addEventListener('click', async () => {
      await api('DELETE', '/faults/' + encodeURIComponent(fault.id)).catch((e) => problem(e.message));
      showFaults();
    });
    body.append(el('tr', { 'data-id': fault.id },
      el('td', {}, fault.id), el('td', {}, fault.origin),
      el('td', {}, JSON.stringify(fault.match)), el('td', {}, JSON.stringify(fault.respond)),
      el('td', {}, fault.times === null ? '∞' : fault.times), el('td', {}, fault.left === null ? '∞' : fault.left),
      el('td', { class: 'fired' }, fault.fired), el('td', {}, remove)));
  }
}

// ---- the mock SDS -----------------------------------------------------------------------

async function showSds() {
  const routes = await loadRoutes();
  const body = $('sds-body');
  clear(body);
  const last = routes.last_reload;
  body.append(el('div', { class: 'card' },
    el('h3', {}, 'Routes: ', routes.routes),
    last ? el('p', {}, 'Last reload ', last.at, ' (', last.trigger, '): ',
      el('span', { class: last.result === 'ok' ? 'good' : 'bad' }, last.result === 'ok' ? 'installed' : 'refused, the running routes stay'))
      : el('p', { class: 'note' }, 'not reloaded since start-up'),
    last && last.problems.length ? el('ul', { class: 'bad' }, last.problems.map((p) => el('li', {}, p.file, p.line ? ':' + p.line : '', p.key ? ' ' + p.key : '', ': ', p.message))) : null));
  body.append(el('h3', {}, 'Consumers'));
  for (const c of routes.consumers) {
    body.append(el('div', { class: 'card' }, el('h3', {}, c.name, ' ', el('small', {}, c.asid, ' · ', c.ods_code)),
      el('p', {}, 'may send to: ', c.may_send_to ? c.may_send_to.join(', ') : 'any provider'),
      el('div', { class: 'chips' }, c.interactions.map((i) => el('span', { title: i }, interactionName(i))))));
  }
  body.append(el('h3', {}, 'Providers'));
  for (const p of routes.providers) {
    body.append(el('div', { class: 'card' }, el('h3', {}, p.name, ' ', el('small', {}, p.asid, ' · ', p.ods_code, ' · ', p.party_key)),
      el('table', { class: 'list' }, el('thead', {}, el('tr', {}, el('th', {}, 'service root'), el('th', {}, 'CPA id'), el('th', {}, 'backend'), el('th', {}, 'jwt mode'), el('th', {}, 'interactions'))),
        el('tbody', {}, p.endpoints.map((e) => el('tr', {},
          el('td', {}, e.service_root), el('td', {}, e.cpa_id), el('td', {}, e.backend), el('td', {}, e.jwt_mode || 'default'),
          el('td', { class: 'chips' }, e.interactions.map((i) => el('span', { title: i }, interactionName(i))))))))));
  }
}

// ---- coverage ---------------------------------------------------------------------------

function counts(map) {
  const entries = Object.entries(map);
  if (!entries.length) return el('span', { class: 'note' }, 'none');
  return el('span', { class: 'chips' }, entries.map(([k, n]) => el('span', { class: 'seen', title: k }, (state.interactions.get(k) || k) + ' × ' + n)));
}

async function showCoverage() {
  const report = await api('GET', '/report');
  const body = $('coverage-body');
  clear(body);
  body.append(el('p', { class: 'note' }, 'Counted since ', report.since, '.'));
  for (const c of report.consumers) {
    body.append(el('div', { class: 'card consumer', 'data-asid': c.asid },
      el('h3', {}, c.name || 'Senders not in routes.toml', ' ', el('small', {}, c.asid, ' · ', c.requests + ' requests')),
      el('table', {}, el('tbody', {},
        el('tr', {}, el('td', {}, 'interactions sent'), el('td', { class: 'interactions' }, counts(c.interactions))),
        el('tr', {}, el('td', {}, 'SSP errors received'), el('td', { class: 'ssp-errors' }, counts(c.ssp_errors))),
        el('tr', {}, el('td', {}, 'provider errors received'), el('td', { class: 'provider-errors' }, counts(c.provider_errors))),
        el('tr', {}, el('td', {}, 'statuses'), el('td', {}, counts(c.statuses))),
        el('tr', {}, el('td', {}, 'JWT rules broken'), el('td', { class: 'jwt-rules' }, counts(c.jwt_rules))),
        el('tr', {}, el('td', {}, 'catalogue errors never seen'), el('td', { class: 'never-seen chips' },
          c.never_seen.map((id) => el('span', {}, id))))))));
  }
}

// ---- tabs and start-up ------------------------------------------------------------------

const views = { faults: showFaults, sds: showSds, coverage: showCoverage };

function show(tab) {
  for (const button of document.querySelectorAll('nav .tab')) button.classList.toggle('active', button.dataset.tab === tab);
  for (const panel of document.querySelectorAll('main .panel')) panel.hidden = panel.id !== tab;
  if (views[tab]) views[tab]().catch((e) => { if (!(e instanceof NeedToken)) problem(e.message); });
}

async function start() {
  problem('');
  try {
    await loadRoutes();
  } catch (e) {
    if (!(e instanceof NeedToken)) problem(e.message);
    return;
  }
  $('token-form').hidden = true;
  connect();
  show(location.pathname === '/report' ? 'coverage' : (location.hash.slice(1) || 'requests'));
}

function wire() {
  for (const button of document.querySelectorAll('nav .tab')) {
    button.addEventListener('click', () => { history.replaceState(null, '', '#' + button.dataset.tab); show(button.dataset.tab); });
  }
  for (const id of ['f-trace', 'f-asid', 'f-interaction', 'f-status', 'f-error']) $(id).addEventListener('input', renderRows);
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    state.token = $('token').value;
    $('token').value = '';
    sessionStorage.setItem(TOKEN_KEY, state.token);
    start();
  });
  $('clear-journal').addEventListener('click', async () => {
    await api('DELETE', '/journal').catch((e) => problem(e.message));
    state.entries = [];
    state.ids.clear();
    renderRows();
  });
  $('faults-refresh').addEventListener('click', () => show('faults'));
  $('faults-clear').addEventListener('click', async () => { await api('DELETE', '/faults').catch((e) => problem(e.message)); show('faults'); });
  $('sds-refresh').addEventListener('click', () => show('sds'));
  $('sds-reload').addEventListener('click', async () => {
    try { await api('POST', '/reload'); } catch (e) { problem(e.message); }
    show('sds');
  });
  $('coverage-refresh').addEventListener('click', () => show('coverage'));
  $('coverage-reset').addEventListener('click', async () => { await api('DELETE', '/report').catch((e) => problem(e.message)); show('coverage'); });
}

wire();
start();
