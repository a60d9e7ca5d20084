// provdb ui: the investigation page. Plain JavaScript, no library: the graph is drawn as SVG
// with a layered layout (senders left of receivers, the direction information flows).
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
// Alerts and machines refresh when the server says the archive changed (`/api/events`);
// while that stream is not open (a proxy that buffers it, a reconnect), every 2 s; and with
// it, at least every 30 s all the same.
const POLL_MS = 2000;
const SAFETY_POLL_MS = 30000;
const NODE_W = 176;
const NODE_H = 44;
const LAYER_GAP = 300;
const ROW_GAP = 66;
// Vertices added by one expansion at most (the query's guards bound the work behind it).
const EXPAND_LIMIT = 1000;

// Colour and shape of each vertex type; types not listed are grey ellipses.
const STYLES = {
  task: { fill: '#9cc3ff', shape: 'rect' },
  process_memory: { fill: '#c8dcff', shape: 'round' },
  file: { fill: '#b9e3b0', shape: 'ellipse' },
  directory: { fill: '#d3efc5', shape: 'ellipse' },
  link: { fill: '#d3efc5', shape: 'ellipse' },
  char: { fill: '#d3efc5', shape: 'ellipse' },
  block: { fill: '#d3efc5', shape: 'ellipse' },
  fifo: { fill: '#e2f4d8', shape: 'ellipse' },
  pipe: { fill: '#e2f4d8', shape: 'ellipse' },
  iattr: { fill: '#eef6e8', shape: 'ellipse' },
  xattr: { fill: '#eef6e8', shape: 'ellipse' },
  path: { fill: '#fff1a8', shape: 'note' },
  socket: { fill: '#ffc48a', shape: 'diamond' },
  address: { fill: '#ffd9b0', shape: 'diamond' },
  packet: { fill: '#ffb3a3', shape: 'diamond' },
  packet_content: { fill: '#ffcfc4', shape: 'diamond' },
  argv: { fill: '#e6d7ff', shape: 'note' },
  envp: { fill: '#efe6ff', shape: 'note' },
  machine: { fill: '#d0d4da', shape: 'hexagon' },
};
const DEFAULT_STYLE = { fill: '#e4e6ea', shape: 'ellipse' };

const $ = (sel) => document.querySelector(sel);

// Marks `name` in the page's performance timeline once the browser has painted what was just
// drawn (a frame, then a task after it), the first time only: `provdb:results` (a query's
// table and graph) and `provdb:alerts` (the alert list). Their startTime is the time since
// navigation began, what benches/ui_page_load.py reports as the page's load time.
function markPainted(name) {
  if (performance.getEntriesByName(name, 'mark').length) return;
  requestAnimationFrame(() => setTimeout(() => {
    if (!performance.getEntriesByName(name, 'mark').length) performance.mark(name);
  }, 0));
}

// ---------------------------------------------------------------- the graph on screen

const graph = {
  vertices: new Map(), // id -> vertex JSON (+ on_path)
  edges: new Map(), // id -> edge JSON {id, type, from, to, time, on_path}
  selected: null,
  highlight: new Set(), // ids of vertices and edges on a highlighted path
  pathFrom: null, // the first vertex while picking a path
};
let view = { x: 0, y: 0, w: 1000, h: 520 };

function addGraph(g, { onPath = false } = {}) {
  for (const v of g.vertices || []) {
    const old = graph.vertices.get(v.id);
    graph.vertices.set(v.id, { ...(old || {}), ...v, on_path: (old && old.on_path) || v.on_path || onPath });
  }
  for (const e of g.edges || []) {
    if (!e.id) continue;
    if (!graph.vertices.has(e.from) || !graph.vertices.has(e.to)) continue;
    const old = graph.edges.get(e.id);
    graph.edges.set(e.id, { ...(old || {}), ...e, on_path: (old && old.on_path) || e.on_path || onPath });
  }
}

function clearGraph() {
  graph.vertices.clear();
  graph.edges.clear();
  graph.selected = null;
  graph.highlight.clear();
  graph.pathFrom = null;
}

function styleOf(type) {
  return STYLES[type] || DEFAULT_STYLE;
}

function vertexLabel(v) {
  let first = v.type || '?';
  if (v.pid !== null && v.pid !== undefined) first += ' ' + v.pid;
  const second = v.name || shortId(v.id);
  return [first, second];
}

function shortId(id) {
  return id && id.length > 14 ? id.slice(0, 6) + '\u2026' + id.slice(-6) : id || '';
}

function clip(text, n) {
  return text.length > n ? '\u2026' + text.slice(text.length - n + 1) : text;
}

function timeOfDay(t) {
  if (!t) return '';
  const m = /T(\d\d:\d\d:\d\d)/.exec(t);
  return m ? m[1] : t;
}

// Layers: a vertex is right of every vertex that sends to it (longest path from a source;
// a cycle is broken at the vertex with the fewest unplaced senders).
function layout() {
  const ids = [...graph.vertices.keys()];
  const out = new Map(ids.map((id) => [id, []]));
  const inn = new Map(ids.map((id) => [id, []]));
  for (const e of graph.edges.values()) {
    if (e.from === e.to) continue;
    out.get(e.from).push(e.to);
    inn.get(e.to).push(e.from);
  }
  const rank = new Map(ids.map((id) => [id, 0]));
  const left = new Map(ids.map((id) => [id, inn.get(id).length]));
  const done = new Set();
  const queue = ids.filter((id) => left.get(id) === 0);
  while (done.size < ids.length) {
    if (queue.length === 0) {
      let best = null;
      for (const id of ids) {
        if (!done.has(id) && (best === null || left.get(id) < left.get(best))) best = id;
      }
      queue.push(best);
    }
    const id = queue.shift();
    if (done.has(id)) continue;
    done.add(id);
    for (const next of out.get(id)) {
      if (done.has(next)) continue;
      rank.set(next, Math.max(rank.get(next), rank.get(id) + 1));
      left.set(next, left.get(next) - 1);
      if (left.get(next) === 0) queue.push(next);
    }
  }
  const layers = [];
  for (const id of ids) {
    const r = rank.get(id);
    (layers[r] = layers[r] || []).push(id);
  }
  // Order within layers: a few barycentre sweeps, down then up, to shorten crossings.
  const position = new Map();
  const place = () => layers.forEach((l) => (l || []).forEach((id, i) => position.set(id, i)));
  place();
  const bary = (id, nbrs) => {
    const ps = nbrs.map((n) => position.get(n)).filter((p) => p !== undefined);
    return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : position.get(id);
  };
  for (let sweep = 0; sweep < 4; sweep++) {
    const down = sweep % 2 === 0;
    const order = down ? layers : [...layers].reverse();
    for (const l of order) {
      if (!l) continue;
      const key = new Map(l.map((id) => [id, bary(id, down ? inn.get(id) : out.get(id))]));
      l.sort((a, b) => key.get(a) - key.get(b));
      l.forEach((id, i) => position.set(id, i));
    }
  }
  const xy = new Map();
  const tallest = Math.max(1, ...layers.map((l) => (l ? l.length : 0)));
  layers.forEach((l, r) => {
    if (!l) return;
    const offset = ((tallest - l.length) * ROW_GAP) / 2;
    l.forEach((id, i) => xy.set(id, { x: r * LAYER_GAP, y: offset + i * ROW_GAP }));
  });
  return { xy, width: layers.length * LAYER_GAP, height: tallest * ROW_GAP };
}

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function shapeElement(shape, w, h, attrs, parent) {
  switch (shape) {
    case 'rect':
      return el('rect', { x: -w / 2, y: -h / 2, width: w, height: h, ...attrs }, parent);
    case 'round':
      return el('rect', { x: -w / 2, y: -h / 2, width: w, height: h, rx: 12, ...attrs }, parent);
    case 'note':
      return el('path', { d: `M${-w / 2},${-h / 2} H${w / 2 - 10} L${w / 2},${-h / 2 + 10} V${h / 2} H${-w / 2} Z`, ...attrs }, parent);
    case 'diamond':
      return el('polygon', { points: `0,${-h / 2 - 6} ${w / 2 + 6},0 0,${h / 2 + 6} ${-w / 2 - 6},0`, ...attrs }, parent);
    case 'hexagon':
      return el('polygon', { points: `${-w / 2 + 12},${-h / 2} ${w / 2 - 12},${-h / 2} ${w / 2},0 ${w / 2 - 12},${h / 2} ${-w / 2 + 12},${h / 2} ${-w / 2},0`, ...attrs }, parent);
    default:
      return el('ellipse', { cx: 0, cy: 0, rx: w / 2, ry: h / 2 + 4, ...attrs }, parent);
  }
}

// The style sheet inside the SVG, so that an exported file looks as it does here.
const SVG_STYLE = `
.vertex text { font: 11px sans-serif; text-anchor: middle; pointer-events: none; }
.vertex .shape { stroke: #4a5568; stroke-width: 1; }
.vertex.stub .shape { stroke-dasharray: 4 3; }
.vertex.selected .shape { stroke: #1747b5; stroke-width: 3; }
.vertex.on-path .shape { stroke: #d0342c; stroke-width: 2.5; }
.vertex.highlight .shape { stroke: #e08a00; stroke-width: 4; }
.vertex { cursor: pointer; }
.edge path { fill: none; stroke: #8792a2; stroke-width: 1.2; }
.edge.on-path path { stroke: #d0342c; stroke-width: 2.2; }
.edge.highlight path { stroke: #e08a00; stroke-width: 3.5; }
.edge text { font: 10px sans-serif; fill: #4a5568; text-anchor: middle; }
`;

function render() {
  const svg = $('#graph');
  svg.textContent = '';
  const style = el('style', {}, svg);
  style.textContent = SVG_STYLE;
  const defs = el('defs', {}, svg);
  for (const [id, colour] of [['arrow', '#8792a2'], ['arrow-red', '#d0342c'], ['arrow-hl', '#e08a00']]) {
    const m = el('marker', { id, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' }, defs);
    el('path', { d: 'M0,0 L10,5 L0,10 z', fill: colour }, m);
  }
  const { xy } = layout();
  const root = el('g', { id: 'graph-root' }, svg);
  const edgeLayer = el('g', {}, root);
  const vertexLayer = el('g', {}, root);
  for (const e of graph.edges.values()) {
    const a = xy.get(e.from);
    const b = xy.get(e.to);
    if (!a || !b) continue;
    const hl = graph.highlight.has(e.id);
    const cls = 'edge' + (e.on_path ? ' on-path' : '') + (hl ? ' highlight' : '');
    const g = el('g', { class: cls, 'data-id': e.id }, edgeLayer);
    let d;
    let lx;
    let ly;
    if (e.from === e.to) {
      d = `M${a.x + NODE_W / 2},${a.y} c40,-40 40,40 0,10`;
      lx = a.x + NODE_W / 2 + 34;
      ly = a.y - 8;
    } else {
      const x1 = a.x + NODE_W / 2;
      const x2 = b.x - NODE_W / 2 - 6;
      const forward = x2 > x1;
      const sx = forward ? x1 : a.x;
      const sy = forward ? a.y : a.y + NODE_H / 2;
      const tx = forward ? x2 : b.x;
      const ty = forward ? b.y : b.y + NODE_H / 2 + 6;
      const bend = forward ? Math.max(40, (tx - sx) / 2) : 80;
      d = forward
        ? `M${sx},${sy} C${sx + bend},${sy} ${tx - bend},${ty} ${tx},${ty}`
        : `M${sx},${sy} C${sx},${sy + bend} ${tx},${ty + bend} ${tx},${ty}`;
      lx = (sx + tx) / 2;
      ly = (sy + ty) / 2 - 4 + (forward ? 0 : bend * 0.75);
    }
    const marker = hl ? 'arrow-hl' : e.on_path ? 'arrow-red' : 'arrow';
    el('path', { d, 'marker-end': `url(#${marker})` }, g);
    const label = el('text', { x: lx, y: ly }, g);
    label.textContent = e.type + (e.time ? ' ' + timeOfDay(e.time) : '');
    const title = el('title', {}, g);
    title.textContent = `${e.type}${e.time ? ' at ' + e.time : ''}\n${e.id}`;
  }
  for (const v of graph.vertices.values()) {
    const p = xy.get(v.id);
    const s = styleOf(v.type);
    const cls = ['vertex', v.stub ? 'stub' : '', v.on_path ? 'on-path' : '', graph.selected === v.id ? 'selected' : '', graph.highlight.has(v.id) ? 'highlight' : '']
      .filter(Boolean)
      .join(' ');
    const g = el('g', { class: cls, transform: `translate(${p.x},${p.y})`, 'data-id': v.id, 'data-type': v.type || '' }, vertexLayer);
    shapeElement(s.shape, NODE_W, NODE_H, { class: 'shape', fill: s.fill }, g);
    const [first, second] = vertexLabel(v);
    const t1 = el('text', { y: -4 }, g);
    t1.textContent = clip(first, 28);
    const t2 = el('text', { y: 11 }, g);
    t2.textContent = clip(second, 28);
    const title = el('title', {}, g);
    title.textContent = `${first}\n${v.name || ''}\n${v.id}`;
    g.addEventListener('click', (ev) => {
      ev.stopPropagation();
      onVertexClick(v.id);
    });
  }
  applyView();
  renderLegend();
  $('#graph-status').textContent = `${graph.vertices.size} vertices, ${graph.edges.size} edges`;
  for (const id of ['#expand-in', '#expand-out', '#path-mode', '#remove-vertex']) {
    $(id).disabled = !graph.selected;
  }
}

function renderLegend() {
  const types = [...new Set([...graph.vertices.values()].map((v) => v.type))].sort();
  const legend = $('#legend');
  legend.textContent = '';
  for (const t of types) {
    const s = document.createElement('span');
    s.style.setProperty('--c', styleOf(t).fill);
    s.textContent = t;
    legend.appendChild(s);
  }
}

// Shows the whole graph, never enlarged beyond its natural size (labels stay readable).
function fit() {
  const { width, height } = layout();
  const pad = 40;
  const w = width + pad * 2;
  const h = height + NODE_H + pad * 2;
  const box = $('#graph').getBoundingClientRect();
  const bw = box.width > 0 ? box.width : 1000;
  const bh = box.height > 0 ? box.height : 520;
  const scale = Math.max(w / bw, h / bh, 1);
  const vw = bw * scale;
  const vh = bh * scale;
  const left = -NODE_W / 2 - pad;
  const top = -NODE_H / 2 - pad;
  view = { x: left - (vw - w) / 2, y: top - (vh - h) / 2, w: vw, h: vh };
  applyView();
}

function applyView() {
  $('#graph').setAttribute('viewBox', `${view.x} ${view.y} ${view.w} ${view.h}`);
}

function setupPanZoom() {
  const svg = $('#graph');
  svg.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const box = svg.getBoundingClientRect();
    const fx = (ev.clientX - box.left) / box.width;
    const fy = (ev.clientY - box.top) / box.height;
    const k = ev.deltaY > 0 ? 1.15 : 1 / 1.15;
    const nw = view.w * k;
    const nh = view.h * k;
    view = { x: view.x + (view.w - nw) * fx, y: view.y + (view.h - nh) * fy, w: nw, h: nh };
    applyView();
  }, { passive: false });
  let drag = null;
  svg.addEventListener('mousedown', (ev) => {
    drag = { x: ev.clientX, y: ev.clientY, view: { ...view } };
  });
  window.addEventListener('mousemove', (ev) => {
    if (!drag) return;
    const box = svg.getBoundingClientRect();
    const k = view.w / box.width;
    view = { ...drag.view, x: drag.view.x - (ev.clientX - drag.x) * k, y: drag.view.y - (ev.clientY - drag.y) * k };
    applyView();
  });
  window.addEventListener('mouseup', () => (drag = null));
}

// ---------------------------------------------------------------- API

async function api(path, options) {
  const r = await fetch(path, options);
  const text = await r.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (e) {
    throw new Error(`${r.status}: ${text}`);
  }
  if (!r.ok) {
    const err = new Error((body && body.error) || `${r.status}`);
    err.body = body;
    throw err;
  }
  return body;
}

// The query language's quoting of a string literal.
function quote(s) {
  return "'" + String(s).replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
}

// ---------------------------------------------------------------- query view

function setBusy(text) {
  $('#query-status').textContent = text;
  document.body.dataset.state = text ? 'busy' : 'idle';
}

async function runQuery(text, { keepGraph = false } = {}) {
  $('#query-error').hidden = true;
  $('#warnings').textContent = '';
  setBusy('running\u2026');
  const started = performance.now();
  try {
    const r = await api('/api/graph?q=' + encodeURIComponent(text));
    if (!keepGraph) clearGraph();
    addGraph(r);
    renderTable(r);
    const notes = r.warnings.map((w) => 'warning: ' + w);
    if (r.omitted_vertices) {
      notes.push(`the graph shows the first ${r.vertices.length} vertices of ${r.vertices.length + r.omitted_vertices} (the table has every row)`);
    }
    for (const note of notes) {
      const li = document.createElement('li');
      li.textContent = note;
      $('#warnings').appendChild(li);
    }
    render();
    fit();
    setBusy('');
    $('#query-status').textContent = `${r.rows.length} row(s) in ${(performance.now() - started).toFixed(0)} ms`;
    markPainted('provdb:results');
  } catch (e) {
    setBusy('');
    $('#query-error').textContent = 'error: ' + e.message;
    $('#query-error').hidden = false;
    $('#results').textContent = '';
  }
}

function cellContent(value) {
  if (value === null || value === undefined) return document.createTextNode('');
  if (typeof value === 'object' && 'id' in value && 'type' in value) {
    if ('name' in value) {
      const a = document.createElement('a');
      a.className = 'vertex-link';
      a.textContent = `${value.type} ${value.name || shortId(value.id)}`;
      a.title = value.id;
      a.dataset.id = value.id;
      a.addEventListener('click', () => showVertex(value.id, { add: true }));
      return a;
    }
    return document.createTextNode(`${value.type}${value.time ? ' ' + value.time : ''}`);
  }
  return document.createTextNode(typeof value === 'object' ? JSON.stringify(value) : String(value));
}

function renderTable(r) {
  const table = $('#results');
  table.textContent = '';
  const head = table.createTHead().insertRow();
  for (const c of r.columns) {
    const th = document.createElement('th');
    th.textContent = c;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const row of r.rows.slice(0, 2000)) {
    const tr = body.insertRow();
    for (const v of row) tr.insertCell().appendChild(cellContent(v));
  }
  if (r.rows.length > 2000) {
    const tr = body.insertRow();
    const td = tr.insertCell();
    td.colSpan = r.columns.length;
    td.textContent = `\u2026 ${r.rows.length - 2000} more rows (the API has them all: /api/query)`;
  }
}

async function onVertexClick(id) {
  if (graph.pathFrom && graph.pathFrom !== id) {
    highlightPath(graph.pathFrom, id);
    graph.pathFrom = null;
    $('#path-mode').classList.remove('on');
    return;
  }
  await showVertex(id, { add: false });
}

async function showVertex(id, { add }) {
  const details = $('#details');
  details.textContent = 'loading\u2026';
  try {
    const v = await api('/api/vertex/' + encodeURIComponent(id));
    if (add || !graph.vertices.has(id)) {
      addGraph({ vertices: [v] });
    }
    graph.selected = id;
    render();
    if (add) fit();
    renderDetails(v);
  } catch (e) {
    details.textContent = 'error: ' + e.message;
  }
}

function renderDetails(v) {
  const details = $('#details');
  details.textContent = '';
  const h = document.createElement('h3');
  h.textContent = `${v.type}${v.pid !== null && v.pid !== undefined ? ' ' + v.pid : ''} ${v.name || ''}`;
  details.appendChild(h);
  const table = document.createElement('table');
  table.id = 'attributes';
  const rows = [['id', v.id], ['class', v.class], ['machine', v.machine], ['time', v.time], ['stub', v.stub]];
  for (const [k, val] of Object.entries(v.attributes || {})) rows.push([k, val]);
  for (const [k, val] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = val === null || val === undefined ? '' : typeof val === 'object' ? JSON.stringify(val) : String(val);
  }
  details.appendChild(table);
  const inCount = v.adjacent.filter((a) => a.direction === 'in').length;
  const outCount = v.adjacent.length - inCount;
  const p = document.createElement('p');
  p.className = 'hint';
  const more = v.truncated.length ? ` (more ${v.truncated.join(' and ')}: use a query)` : '';
  p.textContent = `${inCount} incoming, ${outCount} outgoing edge(s)${more}.`;
  details.appendChild(p);
  const list = document.createElement('ul');
  list.className = 'mono';
  for (const a of v.adjacent.slice(0, 60)) {
    const li = document.createElement('li');
    const arrow = a.direction === 'in' ? '\u2190' : '\u2192';
    const link = document.createElement('a');
    link.className = 'vertex-link';
    link.textContent = `${a.vertex.type} ${a.vertex.name || shortId(a.vertex.id)}`;
    link.addEventListener('click', () => {
      addGraph({ vertices: [a.vertex], edges: [a.edge] });
      showVertex(a.vertex.id, { add: false });
    });
    li.append(`${arrow} ${a.edge.type} `, link);
    list.appendChild(li);
  }
  details.appendChild(list);
}

async function expand(direction) {
  const id = graph.selected;
  if (!id) return;
  const hops = Math.max(1, Math.min(8, parseInt($('#hops').value, 10) || 1));
  const arrow = direction === 'in' ? `<-[e*1..${hops}]-` : `-[e*1..${hops}]->`;
  const q = `(v {id:${quote(id)}}) ${arrow} (n) | limit ${EXPAND_LIMIT}`;
  setBusy('expanding\u2026');
  try {
    const r = await api('/api/graph?q=' + encodeURIComponent(q));
    const before = graph.vertices.size;
    addGraph(r);
    render();
    fit();
    const added = graph.vertices.size - before;
    const warn = r.warnings.length ? ' (' + r.warnings.join('; ') + ')' : '';
    setBusy('');
    $('#graph-status').textContent += ` \u2014 ${added} added${warn}`;
  } catch (e) {
    setBusy('');
    $('#graph-status').textContent = 'error: ' + e.message;
  }
}

// The shortest path between two visible vertices: along edge directions if there is one
// (information flow), else ignoring direction.
function highlightPath(from, to) {
  const find = (directed) => {
    const prev = new Map([[from, null]]);
    const queue = [from];
    while (queue.length) {
      const v = queue.shift();
      if (v === to) break;
      for (const e of graph.edges.values()) {
        const steps = [];
        if (e.from === v) steps.push(e.to);
        if (!directed && e.to === v) steps.push(e.from);
        for (const n of steps) {
          if (!prev.has(n)) {
            prev.set(n, { v, e: e.id });
            queue.push(n);
          }
        }
      }
    }
    if (!prev.has(to)) return null;
    const ids = [to];
    for (let step = prev.get(to); step; step = prev.get(step.v)) ids.push(step.e, step.v);
    return ids;
  };
  const ids = find(true) || find(false);
  graph.highlight = new Set(ids || []);
  render();
  $('#graph-status').textContent += ids ? ` \u2014 path of ${(ids.length - 1) / 2} edge(s)` : ' \u2014 no path between them in the visible graph';
}

function download(name, blob) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 5000);
}

function exportSvg() {
  const svg = $('#graph').cloneNode(true);
  svg.setAttribute('xmlns', SVG_NS);
  const { width, height } = layout();
  svg.setAttribute('viewBox', `${-NODE_W / 2 - 20} ${-NODE_H - 20} ${width + 40} ${height + NODE_H + 40}`);
  svg.setAttribute('width', width + 40);
  svg.setAttribute('height', height + NODE_H + 40);
  const text = new XMLSerializer().serializeToString(svg);
  download('provdb-graph.svg', new Blob([text], { type: 'image/svg+xml' }));
}

async function exportProv() {
  const body = JSON.stringify({ vertices: [...graph.vertices.keys()], edges: [...graph.edges.keys()] });
  const r = await fetch('/api/export/prov-json', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
  if (!r.ok) {
    $('#graph-status').textContent = 'export failed: ' + (await r.text());
    return;
  }
  download('provdb-graph.prov.json', await r.blob());
}

// ---------------------------------------------------------------- alerts

let knownAlerts = null; // ids of every alert listed so far (null before the first list)

function alertParams() {
  const p = new URLSearchParams();
  for (const [key, sel] of [['rule', '#f-rule'], ['severity', '#f-severity'], ['machine', '#f-machine'], ['since', '#f-since']]) {
    const v = $(sel).value.trim();
    if (v) p.set(key, v);
  }
  return p.toString();
}

let alertsAsked = 0; // requests of the list so far: an older answer arriving late is dropped

async function refreshAlerts() {
  const asked = ++alertsAsked;
  const params = alertParams();
  let list;
  let all;
  try {
    // Filtered, the whole list too: the badge counts every alert, the rule filter offers
    // every rule.
    [list, all] = await Promise.all([api('/api/alerts?' + params), params ? api('/api/alerts') : null]);
    if (asked !== alertsAsked) return;
    $('#alerts-error').textContent = '';
  } catch (e) {
    if (asked === alertsAsked) $('#alerts-error').textContent = e.message;
    return;
  }
  all = all || list;
  const body = $('#alerts-table tbody');
  const fresh = new Set(list.map((a) => a.id));
  const rules = $('#f-rule');
  for (const a of all) {
    if (![...rules.options].some((o) => o.value === a.rule)) {
      const o = document.createElement('option');
      o.value = a.rule;
      o.textContent = a.rule;
      rules.appendChild(o);
    }
  }
  body.textContent = '';
  for (const a of [...list].reverse()) {
    const tr = body.insertRow();
    tr.dataset.id = a.id;
    if (knownAlerts && !knownAlerts.has(a.id)) tr.className = 'new';
    const sev = document.createElement('span');
    sev.className = 'sev-' + a.severity;
    sev.textContent = a.severity;
    tr.insertCell().textContent = a.id;
    tr.insertCell().appendChild(sev);
    tr.insertCell().textContent = a.rule;
    tr.insertCell().textContent = a.machine === null ? '' : a.machine;
    tr.insertCell().textContent = a.time || '';
    tr.insertCell().textContent = a.count;
    tr.insertCell().textContent = a.summary;
    tr.addEventListener('click', () => openAlert(a.id));
  }
  // A filter's change lists alerts again that were only hidden: only unseen ones flash.
  knownAlerts = new Set([...(knownAlerts || []), ...fresh]);
  $('#alert-count').textContent = all.length ? String(all.length) : '';
  $('#alerts-shown').textContent = params ? `${list.length} of ${all.length} shown` : '';
  markPainted('provdb:alerts');
}

async function openAlert(id) {
  const a = await api('/api/alerts/' + encodeURIComponent(id));
  switchView('query', { url: false });
  clearGraph();
  addGraph(a.graph);
  const path = a.path.map((v) => v.id);
  graph.selected = path.length ? path[path.length - 1] : null;
  $('#q').value = path.length ? `(v {id:${quote(path[path.length - 1])}}) <-[e*1..3]- (a)` : '';
  history.replaceState(null, '', '?alert=' + encodeURIComponent(id));
  $('#results').textContent = '';
  $('#warnings').textContent = '';
  $('#query-error').hidden = true;
  render();
  fit();
  const details = $('#details');
  details.textContent = '';
  const h = document.createElement('h3');
  h.textContent = `alert ${a.id}: ${a.rule} (${a.severity})`;
  const p = document.createElement('p');
  p.textContent = a.summary;
  const ol = document.createElement('ol');
  ol.id = 'alert-path';
  for (const v of a.path) {
    const li = document.createElement('li');
    const link = document.createElement('a');
    link.className = 'vertex-link';
    link.textContent = `${v.type} ${v.name || shortId(v.id)}`;
    link.addEventListener('click', () => showVertex(v.id, { add: false }));
    li.appendChild(link);
    ol.appendChild(li);
  }
  details.append(h, p, ol);
  $('#graph-status').textContent += ` \u2014 alert ${a.id}: path in red`;
}

// ---------------------------------------------------------------- machines

function msText(ms) {
  return ms ? new Date(ms).toISOString().replace('.000Z', 'Z') : '';
}

async function refreshMachines() {
  let m;
  try {
    m = await api('/api/machines');
  } catch (e) {
    return;
  }
  const body = $('#machines-table tbody');
  body.textContent = '';
  for (const r of m.machines) {
    const tr = body.insertRow();
    tr.dataset.machine = r.machine;
    for (const v of [r.machine, msText(r.first_seen_ms), msText(r.last_seen_ms), r.messages, r.records, r.bytes, r.rejected]) {
      tr.insertCell().textContent = v;
    }
  }
  $('#machine-count').textContent = m.machines.length ? String(m.machines.length) : '';
  const q = $('#quarantine-table tbody');
  q.textContent = '';
  for (const e of [...m.quarantine].reverse()) {
    const tr = q.insertRow();
    for (const v of [msText(e.arrival_ms), e.topic, e.machine === null ? '' : e.machine, e.kind, e.error, e.payload_bytes]) {
      tr.insertCell().textContent = v;
    }
  }
  $('#quarantine-total').textContent = `(${m.quarantine_total})`;
}

// ---------------------------------------------------------------- page

const VIEWS = ['query', 'alerts', 'machines'];

// Shows a tab; `?view=alerts` or `?view=machines` in the URL opens (and shares) that tab.
function switchView(name, { url = true } = {}) {
  for (const b of document.querySelectorAll('nav button')) b.classList.toggle('active', b.dataset.view === name);
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== 'view-' + name;
  if (name === 'query') fit();
  if (url && name !== 'query') history.replaceState(null, '', '?view=' + name);
  if (url && name === 'query') {
    const q = $('#q').value;
    history.replaceState(null, '', q ? '?q=' + encodeURIComponent(q) : location.pathname);
  }
}

let lastPoll = 0;
let events = null; // the EventSource of /api/events

async function poll() {
  lastPoll = Date.now();
  await Promise.all([refreshAlerts(), refreshMachines()]);
  const pushed = events && events.readyState === EventSource.OPEN;
  document.body.dataset.live = pushed ? 'push' : 'poll';
  $('#live').textContent = `live (${pushed ? 'pushed' : 'polled'}) \u00b7 updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
}

function live() {
  if (window.EventSource) {
    events = new EventSource('/api/events');
    events.addEventListener('change', () => {
      document.body.dataset.pushes = String(Number(document.body.dataset.pushes || 0) + 1);
      poll();
    });
    // (Re)connected: what changed while the stream was down.
    events.addEventListener('open', () => poll());
  }
  poll();
  setInterval(() => {
    const pushed = events && events.readyState === EventSource.OPEN;
    if (!pushed || Date.now() - lastPoll >= SAFETY_POLL_MS) poll();
  }, POLL_MS);
}

function init() {
  for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => switchView(b.dataset.view));
  $('#query-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = $('#q').value;
    history.replaceState(null, '', '?q=' + encodeURIComponent(q));
    runQuery(q);
  });
  $('#q').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      $('#query-form').requestSubmit();
    }
  });
  $('#expand-in').addEventListener('click', () => expand('in'));
  $('#expand-out').addEventListener('click', () => expand('out'));
  $('#path-mode').addEventListener('click', () => {
    graph.pathFrom = graph.selected;
    $('#path-mode').classList.add('on');
    $('#graph-status').textContent = 'click the other end of the path';
  });
  $('#remove-vertex').addEventListener('click', () => {
    const id = graph.selected;
    graph.vertices.delete(id);
    for (const [eid, e] of graph.edges) if (e.from === id || e.to === id) graph.edges.delete(eid);
    graph.selected = null;
    render();
  });
  $('#fit').addEventListener('click', fit);
  $('#clear').addEventListener('click', () => {
    clearGraph();
    render();
  });
  $('#export-svg').addEventListener('click', exportSvg);
  $('#export-prov').addEventListener('click', exportProv);
  $('#graph').addEventListener('click', () => {
    if (graph.highlight.size) {
      graph.highlight.clear();
      render();
    }
  });
  $('#alert-filters').addEventListener('change', refreshAlerts);
  $('#alert-filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    refreshAlerts();
  });
  // A form of two text fields and no button submits nothing on Enter: the fields apply on
  // Enter, and as one types (after a pause).
  let typing = null;
  for (const sel of ['#f-machine', '#f-since']) {
    $(sel).addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        clearTimeout(typing);
        refreshAlerts();
      }
    });
    $(sel).addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(refreshAlerts, 400);
    });
  }
  setupPanZoom();
  render();
  const params = new URLSearchParams(location.search);
  if (params.has('q')) {
    $('#q').value = params.get('q');
    runQuery(params.get('q'));
  } else if (params.has('alert')) {
    openAlert(params.get('alert'));
  } else if (VIEWS.includes(params.get('view'))) {
    switchView(params.get('view'), { url: false });
  }
  live();
}

init();
