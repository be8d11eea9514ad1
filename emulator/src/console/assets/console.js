// The iot-emulator console: the things list, a thing's shadows (live, with a desired-only, version-locked
// editor) and the MQTT test client. Everything goes through the emulator's own AWS-compatible APIs, nested
// under /api/ on this origin (emulator/src/console/mod.rs). Data is only ever put in the page as text
// (textContent), never as markup: payloads and shadow documents come from devices.
'use strict';

/** Messages the MQTT test client keeps on the page; older ones are removed (the page's bound). */
const MAX_MESSAGES = 500;

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (name === 'onclick' || name === 'onsubmit' || name === 'onchange') {
      node[name] = value;
    } else if (value !== undefined && value !== null && value !== false) {
      node.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (_) {
    json = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, (json && (json.message || json.Message)) || text || response.statusText);
  }
  return json;
}

function time(epochMillis) {
  if (typeof epochMillis !== 'number') return '';
  return new Date(epochMillis).toISOString();
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch (_) {
    return text;
  }
}

function show(...children) {
  const view = document.getElementById('view');
  view.replaceChildren(...children);
}

function mqttLink(filter) {
  return el('a', { href: '/mqtt?subscribe=' + encodeURIComponent(filter) }, filter);
}

// ---------------------------------------------------------------------------------------------------------
// Things

async function listThings() {
  const things = [];
  let token = null;
  do {
    const page = await api('GET', '/api/iot/things' + (token ? '?nextToken=' + encodeURIComponent(token) : ''));
    things.push(...(page.things || []));
    token = page.nextToken || null;
  } while (token);
  return things;
}

async function thingDetails(name) {
  const encoded = encodeURIComponent(name);
  const [connectivity, principals] = await Promise.all([
    api('POST', `/api/iot/things/${encoded}/connectivity-data`),
    api('GET', `/api/iot/things/${encoded}/principals`),
  ]);
  const certificates = principals.principals || [];
  const policies = new Set();
  for (const arn of certificates) {
    const attached = await api('POST', '/api/iot/attached-policies/' + encodeURIComponent(arn));
    for (const policy of attached.policies || []) policies.add(policy.policyName);
  }
  return { connectivity, certificates, policies: [...policies].sort() };
}

function connectivityCell(connectivity) {
  if (connectivity.connected) {
    return el('td', { class: 'connected', 'data-connected': 'true' },
      'connected', connectivity.timestamp ? el('span', { class: 'muted' }, ' since ', time(connectivity.timestamp * 1000)) : null);
  }
  if (!connectivity.timestamp) {
    return el('td', { class: 'muted', 'data-connected': 'false' }, 'not connected since the emulator started');
  }
  return el('td', { class: 'disconnected', 'data-connected': 'false' },
    'disconnected ', el('span', { class: 'muted' }, time(connectivity.timestamp * 1000)),
    connectivity.disconnectReason ? el('div', {}, connectivity.disconnectReason) : null);
}

async function thingsView() {
  const body = el('tbody');
  const status = el('p', { class: 'muted' }, 'Loading...');
  show(
    el('h1', {}, 'Things'),
    status,
    el('table', { id: 'things' },
      el('thead', {}, el('tr', {}, el('th', {}, 'thing'), el('th', {}, 'connectivity'),
        el('th', {}, 'certificates'), el('th', {}, 'policies'))),
      body),
  );
  async function refresh() {
    try {
      const things = await listThings();
      const rows = [];
      for (const thing of things) {
        const details = await thingDetails(thing.thingName);
        rows.push(el('tr', { 'data-thing': thing.thingName },
          el('td', {}, el('a', { href: '/things/' + encodeURIComponent(thing.thingName) }, thing.thingName)),
          connectivityCell(details.connectivity),
          el('td', {}, details.certificates.map((arn) => el('div', { class: 'muted' }, arn.split('/').pop().slice(0, 12) + '...'))),
          el('td', {}, details.policies.join(', '))));
      }
      body.replaceChildren(...rows);
      status.textContent = things.length === 0
        ? 'No things yet: `iot-emulator provision <thing>` or `aws iot create-thing` creates one.'
        : `${things.length} things; connectivity from the broker's lifecycle, refreshed every 3 s.`;
    } catch (error) {
      status.textContent = 'Cannot list things: ' + error.message;
    }
  }
  await refresh();
  setInterval(refresh, 3000);
}

// ---------------------------------------------------------------------------------------------------------
// One thing: its shadows

function shadowPath(thing, name) {
  return `/api/data/things/${encodeURIComponent(thing)}/shadow` + (name ? '?name=' + encodeURIComponent(name) : '');
}

function shadowTopicPrefix(thing, name) {
  return name ? `$aws/things/${thing}/shadow/name/${name}` : `$aws/things/${thing}/shadow`;
}

/** The document's state sections, the delta's keys highlighted in desired and in the delta itself. */
function stateSection(label, value, deltaKeys) {
  if (value === undefined) return null;
  const block = el('pre', { class: label === 'delta' ? 'delta' : null, 'data-section': label });
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    block.append('{\n');
    const keys = Object.keys(value);
    keys.forEach((key, index) => {
      const line = `  ${JSON.stringify(key)}: ${JSON.stringify(value[key])}${index + 1 < keys.length ? ',' : ''}\n`;
      block.append(deltaKeys.has(key) && label !== 'reported' ? el('span', { class: 'delta-key' }, line) : line);
    });
    block.append('}');
  } else {
    block.textContent = JSON.stringify(value, null, 2);
  }
  return el('div', {}, el('strong', {}, label), block);
}

function metadataList(metadata) {
  const rows = [];
  for (const section of ['desired', 'reported']) {
    for (const [key, entry] of Object.entries((metadata || {})[section] || {})) {
      if (entry && typeof entry.timestamp === 'number') {
        rows.push(el('tr', {}, el('td', {}, section), el('td', {}, key), el('td', {}, time(entry.timestamp * 1000))));
      }
    }
  }
  if (rows.length === 0) return null;
  return el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'section'), el('th', {}, 'key'), el('th', {}, 'updated'))),
    el('tbody', {}, rows));
}

/** `results`: the outcome of the last update of each shadow, kept across the live re-renders. */
function shadowPanel(thing, name, document, reload, results) {
  const key = name || 'classic';
  const prefix = shadowTopicPrefix(thing, name);
  const state = document.state || {};
  const deltaKeys = new Set(Object.keys(state.delta || {}));
  const editor = el('textarea', { 'data-editor': key }, JSON.stringify(state.desired || {}, null, 2));
  const last = results.get(key);
  const message = el('div', { 'data-result': key, class: last ? last.className : null }, last ? last.text : '');
  const outcome = async (className, text) => {
    results.set(key, { className, text });
    await reload();
  };
  const update = async () => {
    let desired;
    try {
      desired = JSON.parse(editor.value);
    } catch (error) {
      message.className = 'error';
      message.textContent = 'Not JSON: ' + error.message;
      return;
    }
    try {
      // Desired only, and only if nobody changed the shadow since it was shown: the AWS console's classic editor
      // rewrites reported too, which is why the seed's author used the MQTT test client instead.
      const answer = await api('POST', shadowPath(thing, name), { state: { desired }, version: document.version });
      await outcome('note', `Updated: version ${answer.version}.`);
    } catch (error) {
      await outcome('error', error.status === 409
        ? `Version conflict: the shadow changed since version ${document.version} was shown; it now shows the ` +
          `newer version. Edit again. (${error.message})`
        : `Update refused (${error.status}): ${error.message}`);
    }
  };
  return el('section', { class: 'panel', 'data-shadow': name || 'classic' },
    el('h2', {}, name ? `Named shadow "${name}"` : 'Classic shadow'),
    el('p', { class: 'muted' }, document.version === undefined
      ? 'No classic shadow yet: updating desired creates it.'
      : `version ${document.version}`,
    document.timestamp ? ` · ${time(document.timestamp * 1000)}` : ''),
    stateSection('desired', state.desired, deltaKeys),
    stateSection('reported', state.reported, deltaKeys),
    stateSection('delta', state.delta, deltaKeys),
    metadataList(document.metadata),
    el('h3', {}, 'Edit desired'),
    el('p', { class: 'muted' }, `Sends {"state":{"desired":...},"version":${document.version}}: reported is left alone, ` +
      'and the update is refused if the shadow changed meanwhile.'),
    editor,
    el('button', { onclick: update, 'data-update': key }, 'Update desired'),
    message,
    el('h3', {}, 'Topics (open in the MQTT test client)'),
    el('ul', { class: 'topics' },
      ['#', 'update/accepted', 'update/rejected', 'update/delta', 'update/documents', 'get/accepted', 'get/rejected']
        .map((suffix) => el('li', {}, mqttLink(`${prefix}/${suffix}`)))),
  );
}

async function thingView(thing) {
  const panels = el('div', { id: 'shadows' });
  const status = el('p', { class: 'muted' });
  show(el('h1', {}, 'Thing ', el('code', {}, thing)), status, panels);
  let editing = false;
  const results = new Map();
  async function reload() {
    const names = await api('GET', `/api/data/api/things/shadow/ListNamedShadowsForThing/${encodeURIComponent(thing)}`)
      .then((answer) => answer.results || [])
      .catch(() => []);
    const sections = [];
    for (const name of [null, ...names.sort()]) {
      try {
        sections.push(shadowPanel(thing, name, await api('GET', shadowPath(thing, name)), reload, results));
      } catch (error) {
        if (error.status !== 404) throw error;
        if (name === null) {
          sections.push(shadowPanel(thing, null, { state: {}, version: undefined }, reload, results));
        }
      }
    }
    panels.replaceChildren(...sections);
    status.textContent = 'Live: the page reloads the shadows whenever a message passes on their topics.';
  }
  panels.addEventListener('focusin', () => { editing = true; });
  panels.addEventListener('focusout', () => { editing = false; });
  await reload();
  // Live: any message on the thing's shadow topics means a shadow may have changed.
  watch([`$aws/things/${thing}/shadow/#`], () => {
    if (!editing) reload().catch((error) => { status.textContent = error.message; });
  }, () => {});
}

// ---------------------------------------------------------------------------------------------------------
// The live tail of the broker (one stream per subscription)

/** Reads /_emulator/subscribe for `filters`, calling onMessage(message) and onDropped(total); returns a stop(). */
function watch(filters, onMessage, onDropped, onEnd) {
  const controller = new AbortController();
  const query = filters.map((filter) => 'filter=' + encodeURIComponent(filter)).join('&');
  (async () => {
    const response = await fetch('/api/data/_emulator/subscribe?' + query, { signal: controller.signal });
    if (!response.ok) {
      const answer = await response.json().catch(() => ({}));
      throw new Error(answer.message || response.statusText);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        if (!line) continue;
        const item = JSON.parse(line);
        if (typeof item.dropped === 'number') onDropped(item.dropped);
        else if (item.topic !== undefined) onMessage(item);
      }
    }
    if (onEnd) onEnd(null);
  })().catch((error) => {
    if (error.name !== 'AbortError' && onEnd) onEnd(error);
  });
  return () => controller.abort();
}

function publisherText(publisher) {
  if (!publisher) return '';
  if (publisher.clientId !== undefined) return 'client ' + publisher.clientId;
  if (publisher.service !== undefined) return 'service ' + publisher.service;
  return 'broker';
}

// ---------------------------------------------------------------------------------------------------------
// MQTT test client

function mqttView(initialFilters) {
  let paused = false;
  const subscriptions = new Map();
  const list = el('div', { id: 'messages' });
  const filtersShown = el('div', { class: 'filters', id: 'subscriptions' });
  const notice = el('div', { id: 'notice' });
  const filterInput = el('input', { type: 'text', id: 'filter', value: '#', 'aria-label': 'topic filter' });
  const pauseButton = el('button', { id: 'pause' }, 'Pause');

  function addMessage(message) {
    if (paused) return;
    const payload = message.payload !== undefined ? pretty(message.payload) : 'base64: ' + message.payloadBase64;
    list.prepend(el('div', { class: 'message', 'data-topic': message.topic },
      el('div', { class: 'meta' },
        el('span', { class: 'topic' }, message.topic), ' · ', time(message.timestamp), ' · QoS ', message.qos,
        message.retain ? ' · retained' : '', ' · ', el('span', { class: 'publisher' }, publisherText(message.publisher))),
      el('pre', { class: 'payload' }, payload)));
    while (list.childElementCount > MAX_MESSAGES) list.lastElementChild.remove();
  }

  function renderSubscriptions() {
    filtersShown.replaceChildren(...[...subscriptions.keys()].map((filter) =>
      el('span', { 'data-filter': filter }, filter, ' ',
        el('button', { onclick: () => unsubscribe(filter), title: 'Unsubscribe' }, 'x'))));
  }

  function subscribe(filter) {
    if (!filter || subscriptions.has(filter)) return;
    const stop = watch([filter], addMessage, (total) => {
      notice.className = 'note';
      notice.textContent = `${total} messages on ${filter} were missed: the page fell behind the traffic.`;
    }, (error) => {
      notice.className = 'error';
      notice.textContent = error
        ? `Subscription to ${filter} refused: ${error.message}`
        : `The emulator ended the subscription to ${filter} (it stopped). Reload the page once it is back.`;
      subscriptions.delete(filter);
      renderSubscriptions();
    });
    subscriptions.set(filter, stop);
    renderSubscriptions();
  }

  function unsubscribe(filter) {
    const stop = subscriptions.get(filter);
    if (stop) stop();
    subscriptions.delete(filter);
    renderSubscriptions();
  }

  const topicInput = el('input', { type: 'text', id: 'publish-topic', value: 'console/test', 'aria-label': 'topic' });
  const payloadInput = el('textarea', { id: 'publish-payload' }, '{\n  "message": "Hello from the console"\n}');
  const qosInput = el('select', { id: 'publish-qos' }, el('option', { value: '0' }, 'QoS 0'), el('option', { value: '1' }, 'QoS 1'));
  const retainInput = el('input', { type: 'checkbox', id: 'publish-retain' });
  const publishResult = el('div', { id: 'publish-result' });
  async function publish() {
    const path = '/api/data/topics/' + encodeURIComponent(topicInput.value) +
      `?qos=${qosInput.value}&retain=${retainInput.checked}`;
    try {
      await api('POST', path, payloadInput.value);
      publishResult.className = 'note';
      publishResult.textContent = `Published to ${topicInput.value}.`;
    } catch (error) {
      publishResult.className = 'error';
      publishResult.textContent = `Publish refused (${error.status}): ${error.message}`;
    }
  }

  pauseButton.onclick = () => {
    paused = !paused;
    pauseButton.textContent = paused ? 'Resume' : 'Pause';
  };
  show(
    el('h1', {}, 'MQTT test client'),
    el('p', { class: 'note' },
      'This client acts as a service identity outside device policies, as the AWS console acts as an IAM ' +
      'principal: it sees every topic (reserved ones included, Basic Ingest excluded) and may publish anywhere. ' +
      'A device sees only what its policy allows.'),
    el('section', { class: 'panel' },
      el('h2', {}, 'Subscribe'),
      filterInput, ' ',
      el('button', { id: 'subscribe', onclick: () => subscribe(filterInput.value.trim()) }, 'Subscribe'),
      el('div', { class: 'muted' }, 'For example ', el('code', {}, '#'), ', ', el('code', {}, '$aws/events/#'), ', ',
        el('code', {}, '$aws/things/+/shadow/#'), ', ', el('code', {}, 'data/+/temperature'), '.'),
      filtersShown),
    el('section', { class: 'panel' },
      el('h2', {}, 'Publish'),
      el('div', {}, topicInput, ' ', qosInput, ' ', el('label', {}, retainInput, ' retain')),
      payloadInput,
      el('button', { id: 'publish', onclick: publish }, 'Publish'),
      publishResult),
    el('section', {},
      el('h2', {}, 'Messages'),
      pauseButton,
      el('button', { id: 'clear', onclick: () => list.replaceChildren() }, 'Clear'),
      el('span', { class: 'muted' }, ` newest first; the page keeps the last ${MAX_MESSAGES}.`),
      notice,
      list),
  );
  for (const filter of initialFilters) subscribe(filter);
}


// ---------------------------------------------------------------------------------------------------------
// Logs: a live tail of any log group; for the disconnect records, a table and a timeline per thing

/** Log events the page keeps; older ones are removed. */
const MAX_LOG_EVENTS = 1000;
const DISCONNECT_GROUP = '/iot/device-disconnects';
const REASON_COLOURS = {
  LAST_WILL: '#ec7211', CONNECTION_LOST: '#d13212', MQTT_KEEP_ALIVE_TIMEOUT: '#8d6605',
  CLIENT_INITIATED_DISCONNECT: '#1d8102', DUPLICATE_CLIENTID: '#0073bb', SERVER_INITIATED_DISCONNECT: '#545b64',
};

async function logsCall(operation, body) {
  const response = await fetch('/api/logs', {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Logs_20140328.' + operation },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, answer.message || answer.__type || response.statusText);
  return answer;
}

async function logGroups() {
  const groups = [];
  let token;
  do {
    const page = await logsCall('DescribeLogGroups', token ? { nextToken: token } : {});
    groups.push(...(page.logGroups || []).map((group) => group.logGroupName));
    token = page.nextToken;
  } while (token);
  return groups;
}

/** Reads a group from where the last read ended: every page, then only newer events (by eventId at the edge). */
function logFollower(group) {
  let newest = null;
  const seenAtNewest = new Set();
  return async function readNew() {
    const events = [];
    let token;
    do {
      const request = { logGroupName: group };
      if (newest !== null) request.startTime = newest;
      if (token) request.nextToken = token;
      const page = await logsCall('FilterLogEvents', request);
      events.push(...(page.events || []));
      token = page.nextToken;
    } while (token);
    const fresh = events.filter((event) => !(event.timestamp === newest && seenAtNewest.has(event.eventId)));
    for (const event of fresh) {
      if (newest === null || event.timestamp > newest) {
        newest = event.timestamp;
        seenAtNewest.clear();
      }
      if (event.timestamp === newest) seenAtNewest.add(event.eventId);
    }
    return fresh;
  };
}

function disconnectRecord(event) {
  try {
    const record = JSON.parse(event.message);
    return record && record.schema === 'iot.disconnect.v1' ? record : null;
  } catch (_) {
    return null;
  }
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attributes, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child);
  return node;
}

/** One row per thing: its disconnects as marks on a common time axis, coloured by reason (wills above the line,
 * lifecycle events below); where a Last Will says when its session began (connectedAt), the session as a bar
 * ending at the disconnect. */
function timelines(records) {
  const things = new Map();
  for (const record of records) {
    if (!things.has(record.thing)) things.set(record.thing, []);
    things.get(record.thing).push(record);
  }
  const times = records.flatMap((record) => [record.eventTime, record.connectedAt].filter((t) => typeof t === 'number'));
  const from = Math.min(...times);
  const to = Math.max(Date.now(), ...times);
  const width = 900;
  const x = (t) => 150 + ((t - from) / Math.max(1, to - from)) * (width - 170);
  const rows = [...things.keys()].sort();
  const height = 30 * rows.length + 30;
  const picture = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', id: 'timeline' });
  rows.forEach((thing, index) => {
    const y = 20 + index * 30;
    const row = svg('g', { 'data-thing': thing });
    row.append(svg('text', { x: 0, y: y + 4, 'font-size': 12 }, thing));
    row.append(svg('line', { x1: 150, x2: width - 20, y1: y, y2: y, stroke: '#d5dbdb' }));
    for (const record of things.get(thing)) {
      if (typeof record.connectedAt === 'number' && record.connectedAt <= record.eventTime) {
        row.append(svg('rect', { x: x(record.connectedAt), y: y - 4, width: Math.max(2, x(record.eventTime) - x(record.connectedAt)),
          height: 8, fill: '#b7e3a8' }, svg('title', {}, `session from ${time(record.connectedAt)}`)));
      }
      // Wills above the line, lifecycle events below: the two signals of one disconnect come together.
      row.append(svg('circle', { cx: x(record.eventTime), cy: record.source === 'will' ? y - 5 : y + 5, r: 5,
        fill: REASON_COLOURS[record.reason] || '#687078',
        'data-reason': record.reason },
      svg('title', {}, `${time(record.eventTime)} ${record.reason} (${record.source})${record.expected ? ', expected' : ''}`)));
    }
    picture.append(row);
  });
  picture.append(svg('text', { x: 150, y: height - 6, 'font-size': 11, fill: '#687078' }, time(from)));
  picture.append(svg('text', { x: width - 20, y: height - 6, 'font-size': 11, fill: '#687078', 'text-anchor': 'end' }, time(to)));
  const legend = el('div', { class: 'muted' }, Object.entries(REASON_COLOURS).map(([reason, colour]) =>
    el('span', { class: 'legend' }, el('span', { class: 'swatch', 'data-colour': colour }), reason, ' ')));
  for (const swatch of legend.querySelectorAll('.swatch')) swatch.style.background = swatch.dataset.colour;
  return el('div', {}, picture, legend);
}

async function logsView(group) {
  const groups = await logGroups();
  const picker = el('select', { id: 'log-group', onchange: () => { location.href = '/logs?group=' + encodeURIComponent(picker.value); } },
    el('option', { value: '' }, 'choose a log group'),
    groups.map((name) => el('option', { value: name, selected: name === group }, name)));
  if (!group) {
    show(el('h1', {}, 'Logs'), picker, el('ul', {}, groups.map((name) =>
      el('li', {}, el('a', { href: '/logs?group=' + encodeURIComponent(name) }, name)))));
    return;
  }
  const status = el('p', { class: 'muted' });
  const events = el('div', { id: 'log-events' });
  const records = [];
  const recordRows = el('tbody');
  const timeline = el('div', { id: 'timelines' });
  const isDisconnects = group === DISCONNECT_GROUP;
  show(
    el('h1', {}, 'Logs ', el('code', {}, group)), picker, status,
    isDisconnects ? el('section', { class: 'panel' },
      el('h2', {}, 'Connections and disconnects per thing'), timeline,
      el('h2', {}, 'Disconnect records'),
      el('table', { id: 'disconnects' }, el('thead', {}, el('tr', {}, ['time', 'thing', 'source', 'reason', 'expected']
        .map((name) => el('th', {}, name)))), recordRows)) : null,
    el('h2', {}, 'Live tail'),
    events,
  );
  const readNew = logFollower(group);
  async function poll() {
    try {
      const fresh = await readNew();
      for (const event of fresh) {
        events.prepend(el('div', { class: 'message', 'data-event': event.eventId },
          el('div', { class: 'meta' }, time(event.timestamp), ' · ', el('span', { class: 'topic' }, event.logStreamName)),
          el('pre', {}, pretty(event.message))));
        const record = isDisconnects ? disconnectRecord(event) : null;
        if (record) {
          records.push(record);
          recordRows.prepend(el('tr', { 'data-record': record.recordId },
            el('td', {}, time(record.eventTime)), el('td', {}, record.thing), el('td', {}, record.source),
            el('td', {}, record.reason), el('td', {}, record.expected ? 'yes' : 'no')));
        }
      }
      while (events.childElementCount > MAX_LOG_EVENTS) events.lastElementChild.remove();
      while (recordRows.childElementCount > MAX_LOG_EVENTS) recordRows.lastElementChild.remove();
      if (records.length > MAX_LOG_EVENTS) records.splice(0, records.length - MAX_LOG_EVENTS);
      if (isDisconnects && fresh.length > 0) timeline.replaceChildren(timelines(records));
      status.textContent = `Following: new events appear within a second (the page keeps the last ${MAX_LOG_EVENTS}).`;
    } catch (error) {
      status.textContent = `Cannot read ${group}: ${error.message}`;
    }
  }
  await poll();
  setInterval(poll, 1000);
}

// ---------------------------------------------------------------------------------------------------------
// Why was it denied: the broker's policy refusals with the statement (or the absence of one) that decided

function statementsOf(documentText) {
  const document = JSON.parse(documentText);
  return Array.isArray(document.Statement) ? document.Statement : [document.Statement];
}

function explanation(denial, documents) {
  if (denial.decision === 'ExplicitDeny') {
    return el('div', {}, 'Denied by ', denial.statements.map((statement) => {
      const text = documents.get(statement.policy);
      let shown = '(policy no longer readable)';
      if (text) {
        try {
          shown = JSON.stringify(statementsOf(text)[statement.statementIndex], null, 2);
        } catch (_) {
          shown = '(policy document not readable)';
        }
      }
      return el('div', { class: 'deciding', 'data-policy': statement.policy },
        `policy ${statement.policy}, statement ${statement.statementIndex + 1}:`, el('pre', {}, shown));
    }));
  }
  if (denial.policies.length === 0) {
    return el('div', {}, 'No policy is attached to the certificate: everything is denied.');
  }
  return el('div', {}, `No statement of ${denial.policies.join(', ')} allows ${denial.action} on this resource ` +
    '(implicit deny). Check the resource ARN, the policy variables and the client id against the policy.');
}

async function deniedView() {
  const rows = el('tbody');
  const status = el('p', { class: 'muted' });
  show(
    el('h1', {}, 'Why was it denied'),
    el('p', { class: 'note' }, 'Every CONNECT, PUBLISH (or will) and SUBSCRIBE the broker refused by policy, with the ' +
      'statement that denied it or the policies that did not allow it. AWS does not show this.'),
    status,
    el('table', { id: 'denials' },
      el('thead', {}, el('tr', {}, ['time', 'client', 'action', 'resource', 'outcome', 'why'].map((name) => el('th', {}, name)))),
      rows),
  );
  async function refresh() {
    try {
      const answer = await api('GET', '/api/data/_emulator/denials');
      const documents = new Map();
      for (const name of new Set(answer.denials.flatMap((denial) => denial.statements.map((statement) => statement.policy)))) {
        try {
          documents.set(name, (await api('GET', '/api/iot/policies/' + encodeURIComponent(name))).policyDocument);
        } catch (_) {
          // Deleted since: said in the row.
        }
      }
      rows.replaceChildren(...answer.denials.map((denial) => el('tr', { 'data-action': denial.action, 'data-decision': denial.decision },
        el('td', {}, time(denial.timestamp)),
        el('td', {}, denial.clientId, denial.thing && denial.thing !== denial.clientId ? ` (thing ${denial.thing})` : ''),
        el('td', {}, denial.action),
        el('td', { class: 'resource' }, denial.resource),
        el('td', {}, { ConnectRefused: 'CONNECT refused', Disconnected: 'disconnected (AUTH_ERROR)', SubackFailure: 'SUBACK 0x80' }[denial.outcome] || denial.outcome),
        el('td', {}, explanation(denial, documents)))));
      status.textContent = answer.total === 0
        ? 'Nothing denied yet.'
        : `${answer.total} refusals in all; the newest ${answer.denials.length} shown, newest first; refreshed every 2 s.`;
    } catch (error) {
      status.textContent = 'Cannot read the denials: ' + error.message;
    }
  }
  await refresh();
  setInterval(refresh, 2000);
}

// ---------------------------------------------------------------------------------------------------------

function start() {
  const path = location.pathname;
  const current = path.startsWith('/mqtt') ? 'nav-mqtt' : path.startsWith('/logs') ? 'nav-logs'
    : path.startsWith('/denied') ? 'nav-denied' : 'nav-things';
  document.getElementById(current).className = 'current';
  let done;
  if (path === '/mqtt') {
    done = Promise.resolve(mqttView(new URLSearchParams(location.search).getAll('subscribe')));
  } else if (path === '/denied') {
    done = deniedView();
  } else if (path === '/logs') {
    done = logsView(new URLSearchParams(location.search).get('group'));
  } else if (path.startsWith('/things/')) {
    done = thingView(decodeURIComponent(path.slice('/things/'.length)));
  } else {
    done = thingsView();
  }
  done.catch((error) => show(el('p', { class: 'error' }, 'The console could not load: ' + error.message)));
}

document.addEventListener('DOMContentLoaded', start);
