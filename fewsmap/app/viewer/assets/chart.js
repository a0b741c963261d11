// The hydrograph: one run's values at a point over valid time, the other runs faint behind it
// (a forecast plume) and the ensemble members as a min–max band. Plain SVG: a chart library
// would be a larger download than this file for one kind of chart.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 720;
const HEIGHT = 260;
const MARGIN = { left: 60, right: 40, top: 24, bottom: 40 }; // the units above the axis
const HOUR = 3600e3;
const TIME_STEPS = [1, 3, 6, 12, 24, 48, 120, 240, 720].map((h) => h * HOUR);

function element(name, attributes, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, String(value));
  }
  if (parent) parent.appendChild(node);
  return node;
}

function text(content, attributes, parent) {
  const node = element('text', attributes, parent);
  node.textContent = content;
  return node;
}

// Round numbers 1, 2 or 5 × 10^k covering [low, high] in about `count` steps.
function niceTicks(low, high, count) {
  const raw = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) {
    ticks.push(Number(t.toPrecision(12)));
  }
  return ticks;
}

function timeTicks(first, last) {
  const step = TIME_STEPS.find((s) => (last - first) / s <= 7) || TIME_STEPS.at(-1);
  const ticks = [];
  for (let t = Math.ceil(first / step) * step; t <= last; t += step) ticks.push(t);
  return ticks;
}

function timeLabel(ms) {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
}

function extent(values, pad) {
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (!(high > low)) {
    low -= pad;
    high += pad;
  }
  return [low, high];
}

// A path through the finite values; a missing value (null) breaks the line.
function linePath(points) {
  let path = '';
  let pen = 'M';
  for (const [x, y] of points) {
    if (y === null) {
      pen = 'M';
      continue;
    }
    path += `${pen}${x.toFixed(1)},${y.toFixed(1)}`;
    pen = 'L';
  }
  return path;
}

/**
 * Draw the hydrograph into `container`.
 *
 * `main` is {label, times: [ms], values: [number|null]}; `plume` a list of those for the other
 * runs; `band` {times, low, high} or null; `currentTime` (ms) is marked with a vertical line.
 * `units` label the value axis: those the answer stated, so chart and legend cannot disagree
 * by a unit the page assumed. `zeroLine` marks 0 (a change's no-change line); `valueRange`
 * [low, high] fixes the value axis (a probability's 0–100 %).
 */
export function drawHydrograph(container, {
  main, plume, band, units, currentTime, zeroLine, valueRange,
}) {
  const all = [main, ...plume];
  const times = all.flatMap((s) => s.times).concat(band ? band.times : []);
  const values = all.flatMap((s) => s.values)
    .concat(band ? [...band.low, ...band.high] : [])
    .filter((v) => v !== null && Number.isFinite(v));
  container.replaceChildren();
  if (!values.length) {
    const note = document.createElement('p');
    note.textContent = 'No data at this point for this run.';
    container.appendChild(note);
    return;
  }
  const [t0, t1] = extent(times, 6 * HOUR);
  const [rawLow, rawHigh] = valueRange || extent(values, 1);
  const margin = (rawHigh - rawLow) * 0.05;
  const [v0, v1] = [rawLow - margin, rawHigh + margin];
  const x = (t) => MARGIN.left + ((t - t0) / (t1 - t0)) * (WIDTH - MARGIN.left - MARGIN.right);
  const y = (v) => (v === null || !Number.isFinite(v) ? null
    : HEIGHT - MARGIN.bottom - ((v - v0) / (v1 - v0)) * (HEIGHT - MARGIN.top - MARGIN.bottom));

  const svg = element('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', class: 'hydrograph',
    'aria-label': `${main.label}: ${main.values.length} values`, 'data-points': main.times.length,
  }, container);
  const grid = element('g', { class: 'grid' }, svg);
  for (const v of niceTicks(v0, v1, 5)) {
    element('line', { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(v), y2: y(v) }, grid);
    text(String(v), { x: MARGIN.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, grid);
  }
  for (const t of timeTicks(t0, t1)) {
    element('line', { x1: x(t), x2: x(t), y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom }, grid);
    text(timeLabel(t), { x: x(t), y: HEIGHT - MARGIN.bottom + 16, 'text-anchor': 'middle' }, grid);
  }
  text(units || '', { x: 12, y: MARGIN.top - 10, class: 'units value-units' }, svg);
  if (zeroLine && v0 < 0 && v1 > 0) {
    element('line', { class: 'zero', x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(0),
                      y2: y(0) }, svg);
  }
  text('UTC', { x: WIDTH - MARGIN.right, y: HEIGHT - 6, 'text-anchor': 'end', class: 'units' }, svg);

  if (band) {
    const upper = band.times.map((t, i) => [x(t), y(band.high[i])]).filter(([, v]) => v !== null);
    const lower = band.times.map((t, i) => [x(t), y(band.low[i])]).filter(([, v]) => v !== null);
    const ring = [...upper, ...lower.reverse()].map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`);
    element('polygon', { class: 'band', points: ring.join(' ') }, svg);
  }
  for (const series of plume) {
    const points = series.times.map((t, i) => [x(t), y(series.values[i])]);
    const group = element('g', { class: 'plume-series', 'data-run': series.label }, svg);
    element('path', { d: linePath(points) }, group);
    for (const [px, py] of points) {
      if (py !== null) element('circle', { cx: px, cy: py, r: 2 }, group);
    }
  }
  if (currentTime >= t0 && currentTime <= t1) {
    element('line', { class: 'now', x1: x(currentTime), x2: x(currentTime),
                      y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom }, svg);
  }
  const group = element('g', { class: 'main-series', 'data-run': main.label }, svg);
  const points = main.times.map((t, i) => [x(t), y(main.values[i])]);
  element('path', { d: linePath(points) }, group);
  points.forEach(([px, py], i) => {
    if (py === null) return;
    const dot = element('circle', { class: 'point', cx: px, cy: py, r: 3 }, group);
    const title = element('title', {}, dot);
    title.textContent = `${new Date(main.times[i]).toISOString().replace('.000', '')}: `
      + `${main.values[i]} ${units || ''}`;
  });
}
