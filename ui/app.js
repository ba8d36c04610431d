// The streaming page: polls the batches of a pipeline, draws its timeline with uPlot and lists
// them; a click on a batch shows its phases, tasks and sample dead letters.
'use strict';

const POLL_MS = 1000;
const charts = {};
let selected;

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

const ms = (value) => (value === undefined ? '' : `${Math.round(value).toLocaleString('en-US')} ms`);
const usd = (value) => (value === undefined ? '' : `$${value.toPrecision(3)}`);
const time = (epochMs) => new Date(epochMs).toISOString().slice(11, 19);

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function drawChart(id, label, batches, pick, format = (v) => v.toLocaleString('en-US')) {
  const xs = batches.map((b) => b.batch);
  const ys = batches.map((b) => pick(b) ?? null);
  const data = [xs, ys];
  const target = document.getElementById(id);
  if (!charts[id]) {
    charts[id] = new uPlot(
      {
        width: Math.max(target.clientWidth, 380),
        height: 180,
        scales: { x: { time: false } },
        axes: [{ label: 'batch' }, { size: 70, values: (_u, values) => values.map(format) }],
        series: [{ label: 'batch' }, { label, stroke: '#0969da', width: 2, points: { show: true } }],
      },
      data,
      target,
    );
  } else {
    charts[id].setData(data);
  }
}

function drawTable(batches) {
  const body = document.querySelector('[data-testid="batches"] tbody');
  body.replaceChildren(
    ...batches.map((b) => {
      const row = el(
        'tr',
        { 'data-batch': b.batch, class: `${b.status}${b.batch === selected ? ' selected' : ''}` },
        el('td', {}, b.batch),
        el('td', {}, time(b.time)),
        el('td', { 'data-testid': 'status' }, b.status),
        el('td', { 'data-testid': 'input' }, b.inputRecords),
        el('td', { 'data-testid': 'output' }, b.outputRecords),
        el('td', { 'data-testid': 'dead-letters' }, b.deadLetters),
        el('td', {}, ms(b.schedulingDelayMs)),
        el('td', {}, ms(b.processingMs)),
        el('td', {}, ms(b.totalDelayMs)),
        el('td', { 'data-testid': 'cost' }, usd(b.costUsd)),
      );
      row.addEventListener('click', () => void showBatch(b.batch));
      return row;
    }),
  );
}

/** The stateful stages' state after the batch: size, and what the batch read and wrote. */
function stateTable(state) {
  if (state.length === 0) return [];
  const heads = [
    'Stage',
    'Partitions',
    'Keys',
    'Chunks',
    'Bytes',
    'Chunks read',
    'Bytes read',
    'Chunks written',
    'Bytes written',
  ];
  return [
    el('h3', {}, 'State'),
    el(
      'table',
      { 'data-testid': 'state' },
      el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', {}, h)))),
      el(
        'tbody',
        {},
        ...state.map((s) =>
          el(
            'tr',
            {},
            el('td', {}, s.stage),
            el('td', {}, s.partitions),
            el('td', { 'data-testid': 'state-keys' }, s.keys),
            el('td', {}, s.chunks),
            el('td', {}, s.bytes),
            el('td', {}, s.chunksRead),
            el('td', {}, s.bytesRead),
            el('td', {}, s.chunksWritten),
            el('td', {}, s.bytesWritten),
          ),
        ),
      ),
    ),
  ];
}

async function showBatch(batch) {
  selected = batch;
  const detail = await getJson(`/api/batches/${batch}`);
  const section = document.getElementById('detail');
  const parts = [el('h2', {}, `Batch ${batch}`)];
  if (detail.batch.failure)
    parts.push(el('p', { 'data-testid': 'failure' }, `Failed: ${detail.batch.failure}`));
  const progress = detail.progress;
  if (progress) {
    parts.push(
      el(
        'p',
        { 'data-testid': 'figures' },
        `${progress.inputRecords} records in (${progress.inputBytes} bytes), ${progress.outputRecords} out; ` +
          `${progress.readUnits} read and ${progress.writeUnits} write units, ` +
          `${progress.gbSeconds.toPrecision(3)} GB-s, ${usd(progress.costUsd)} ` +
          `(ingest ${usd(progress.costByStep.ingest) || '$0'}, seal ${usd(progress.costByStep.seal) || '$0'} ` +
          `in ${ms(progress.sealMs)}, tasks ${usd(progress.costByStep.tasks) || '$0'})`,
      ),
      el(
        'table',
        { 'data-testid': 'phases' },
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ...[
              'Phase',
              'Function',
              'Tasks',
              'Min',
              'Median',
              'Max',
              'Records in',
              'Records out',
              'Bytes read',
              'Bytes written',
              'Dead letters',
            ].map((h) => el('th', {}, h)),
          ),
        ),
        el(
          'tbody',
          {},
          ...progress.phases.map((p) =>
            el(
              'tr',
              {},
              el('td', {}, p.phase),
              el('td', { 'data-testid': 'phase-function' }, p.function),
              el('td', { 'data-testid': 'phase-tasks' }, p.tasks),
              el('td', {}, ms(p.taskMs.min)),
              el('td', {}, ms(p.taskMs.median)),
              el('td', {}, ms(p.taskMs.max)),
              el('td', {}, p.recordsIn),
              el('td', {}, p.recordsOut),
              el('td', {}, p.bytesRead),
              el('td', {}, p.bytesWritten),
              el('td', {}, p.deadLetters),
            ),
          ),
        ),
      ),
      ...stateTable(progress.state),
      el('h3', {}, 'Requests'),
      el(
        'pre',
        { 'data-testid': 'requests' },
        Object.entries(progress.requests)
          .map(([op, n]) => `${op} ${n}`)
          .join('\n'),
      ),
    );
  }
  const kinds = progress
    ? Object.entries(progress.deadLettersByKind)
        .map(([kind, n]) => `${kind} ${n}`)
        .join(', ')
    : '';
  parts.push(
    el('h3', {}, `Dead letters (${detail.deadLetters.length} shown${kinds ? `; by kind: ${kinds}` : ''})`),
  );
  parts.push(
    el(
      'ul',
      { 'data-testid': 'dead-letter-sample' },
      ...detail.deadLetters.map((d) => el('li', {}, `${d.kind} in ${d.stage}: ${d.reason}`)),
    ),
  );
  section.replaceChildren(...parts);
  section.hidden = false;
}

async function refresh() {
  try {
    const batches = await getJson('/api/batches');
    const complete = batches.filter((b) => b.status === 'complete');
    const records = batches.reduce((sum, b) => sum + b.inputRecords, 0);
    const cost = complete.reduce((sum, b) => sum + (b.costUsd ?? 0), 0);
    document.getElementById('summary').textContent =
      `${batches.length} batches, ${complete.length} complete, ${records} records in, ${usd(cost) || '$0'} in tasks`;
    drawChart('chart-input', 'records/s', batches, (b) => b.inputRate);
    drawChart('chart-processing', 'ms', batches, (b) => b.processingMs);
    drawChart('chart-scheduling', 'ms', batches, (b) => b.schedulingDelayMs);
    drawChart('chart-total', 'ms', batches, (b) => b.totalDelayMs);
    drawChart('chart-dead', 'dead letters', batches, (b) => b.deadLetters);
    drawChart(
      'chart-cost',
      'USD',
      batches,
      (b) => b.costUsd,
      (v) => (v === 0 ? '0' : `$${v.toPrecision(2)}`),
    );
    drawChart('chart-state', 'keys', batches, (b) => b.stateKeys);
    drawChart('chart-watermark', 'ms', batches, (b) => b.watermarkLagMs);
    drawTable(batches);
  } catch (error) {
    document.getElementById('summary').textContent = `cannot reach the pipeline: ${error.message}`;
  }
  setTimeout(() => void refresh(), POLL_MS);
}

async function start() {
  const pipeline = await getJson('/api/pipeline');
  document.getElementById('pipeline').textContent = pipeline.name;
  document.title = `sluice ${pipeline.name}`;
  await refresh();
}

void start();
