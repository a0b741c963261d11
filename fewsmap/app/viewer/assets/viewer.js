// fewsmap's built-in viewer: layers from the FEWS JSON capabilities, the map from fewsmap's XYZ
// tiles (/tiles/{layer}/{z}/{x}/{y}.png), legends from GetLegendGraphic JSON, a hydrograph
// from /api/timeseries, and catchment outlines (GeoJSON from /api/catchments) whose means
// /api/catchments/<set>/<id> draws. `ol` is the vendored OpenLayers full build (see index.html for why).
// Besides one member of one run, it shows the forecast products every front serves: ensemble
// statistics and exceedance probabilities (`member=mean`, `member=above:20`), the change since
// an earlier run (`baseline=`) and sums over a window (`accumulate=`), on the map, the legend
// and the hydrograph alike. What is shown is kept in the URL's hash, so a view can be shared.
import { getJson, errorOf, errorMessage, query, showError, clearError } from './api.js';
import { drawHydrograph } from './chart.js';

const $ = (id) => document.getElementById(id);
const CAPABILITIES = '/wms?request=GetCapabilities&format=application/json';
// The FEWS forecast period lists a layer's runs (each with its valid times) as child layers;
// the picker offers this many of the latest.
const MAX_RUNS = 200;
const PLAY_INTERVAL_MS = 1000;
const TILE_ERROR = 3; // ol/TileState ERROR
const MAX_TILE_ZOOM = 24; // fewsmap's tile matrix ends there (fewsmap/ogc/tiles.py MAX_ZOOM)
// Elevation and member selectors start at the layer's own default (no parameter sent).
const LAYER_DEFAULT = ['', 'layer default'];
// Values of the ensemble dimension that are not members (fewsmap/products/ensemble.py).
const STATISTIC_LABEL = /^(mean|median|min|max|std|p\d{1,2})$/;
const THRESHOLD_LABEL = /^(above|below):/;
const THRESHOLD = 'threshold'; // the statistic selector's entry for exceedance probabilities
const OTHER_THRESHOLD = 'other';
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const FLOAT32_MAX = 3.4e38; // the server takes thresholds within float32
const STATISTIC_TITLES = { mean: 'Mean', median: 'Median', min: 'Minimum', max: 'Maximum',
                           std: 'Standard deviation' };
// Capabilities do not say which layers hold amounts per step, whose sums mean something:
// the style library names their styles after the quantity (fewsmap/catalog/quantities.py).
const ACCUMULABLE_STYLES = new Set(['precipitation', 'precipitation_in', 'snowfall']);
const CHANGE_LAYER_SUFFIX = ':change'; // a derived layer that is a change already

const state = {
  capabilities: null,
  layer: null, // the capabilities entry of the selected layer
  runs: [], // [{label, times: [iso], timesDefault}], newest first
  run: null,
  timeIndex: 0,
  times: [], // the valid times offered: the run's, less those a change or a sum lacks
  elevation: '',
  member: '',
  members: [], // the selected layer's ensemble member labels
  statistic: '', // '' (one member), a statistic (mean, p90 …) or THRESHOLD
  statistics: [], // the statistics the layer lists
  threshold: '', // above:X / below:X, when the statistic is THRESHOLD
  thresholds: [], // the thresholds the layer lists (its configured warning levels)
  dataUnits: '', // the units thresholds are given in (the layer's stored units)
  baseline: '', // '' (no change), 'previous' or an earlier run's reference time
  accumulate: '', // '' or an ISO 8601 duration (PT24H)
  style: '',
  tileKey: '', // layer and query of the tiles on the map now
  shownByKey: new Map(), // tile key → the run and valid time its tiles said they show
  pendingTiles: 0,
  point: null, // [lon, lat] of the hydrograph
  catchment: null, // [set, id] of the hydrograph, when a catchment was clicked
  chart: null, // what the hydrograph draws
};

// ---- the map -------------------------------------------------------------------------------

// Natural Earth 1:110m country outlines (public domain; world-atlas, ISC), shipped with the
// package so the base map works offline.
const baseSource = new ol.source.Vector({
  attributions: 'Outlines: <a href="https://www.naturalearthdata.com/">Natural Earth</a> '
    + '(public domain) via world-atlas',
});
const baseMap = new ol.layer.Vector({
  source: baseSource,
  style: new ol.style.Style({
    fill: new ol.style.Fill({ color: '#f4f1ea' }),
    stroke: new ol.style.Stroke({ color: '#8a8a8a', width: 0.8 }),
  }),
});

const forecastSource = new ol.source.XYZ({
  tileLoadFunction: loadTile,
  maxZoom: MAX_TILE_ZOOM,
  tilePixelRatio: window.devicePixelRatio > 1 ? 2 : 1,
  attributions: 'Forecasts: fewsmap',
  transition: 0, // animation frames replace each other; a fade would blur them together
});
// Its own canvas (className), so the forecast can be read apart from the base map.
const forecastLayer = new ol.layer.Tile({
  source: forecastSource, className: 'forecast-layer', opacity: 0.8, preload: 1,
});

const pointSource = new ol.source.Vector();
const pointLayer = new ol.layer.Vector({
  source: pointSource,
  style: new ol.style.Style({
    image: new ol.style.Circle({
      radius: 6,
      stroke: new ol.style.Stroke({ color: '#000', width: 2 }),
      fill: new ol.style.Fill({ color: 'rgba(255,255,255,0.6)' }),
    }),
  }),
});

// Catchment outlines of the chosen set (/api/catchments/<set>), the clicked one highlighted.
const catchmentSource = new ol.source.Vector();
const catchmentLayer = new ol.layer.Vector({
  source: catchmentSource,
  className: 'catchment-layer',
  style: (feature) => new ol.style.Style({
    stroke: new ol.style.Stroke({
      color: state.catchment && feature.getId() === state.catchment[1] ? '#d00' : '#1a4f8a',
      width: state.catchment && feature.getId() === state.catchment[1] ? 3 : 1.5,
    }),
    fill: new ol.style.Fill({ color: 'rgba(26,79,138,0.05)' }), // clickable inside
  }),
});

const map = new ol.Map({
  target: 'map',
  layers: [baseMap, forecastLayer, catchmentLayer, pointLayer],
  // The attributions stay visible (Natural Earth asks for credit).
  controls: [new ol.control.Zoom(), new ol.control.Attribution({ collapsible: false }),
             new ol.control.ScaleLine()],
  view: new ol.View({ center: [0, 0], zoom: 2 }),
});

// Rings crossing the antimeridian (Fiji, Chukotka) jump between +180 and −180 degrees; drawn
// flat, those edges would streak across the map. Make them continuous (longitudes past 180).
// A ring around the pole (Antarctica) crosses once, so it does not come back: keep it.
function unwrapRing(ring) {
  let shift = 0;
  const continuous = ring.map(([lon, lat], i) => {
    const step = i ? lon - ring[i - 1][0] : 0;
    shift += step > 180 ? -360 : step < -180 ? 360 : 0;
    return [lon + shift, lat];
  });
  return shift === 0 ? continuous : ring;
}

async function loadBaseMap() {
  const topology = await getJson('/viewer/vendor/countries-110m.json');
  const features = new ol.format.TopoJSON({ layers: ['countries'] }).readFeatures(topology);
  for (const feature of features) {
    const geometry = feature.getGeometry();
    const polygons = geometry.getType() === 'Polygon' ? [geometry.getCoordinates()]
      : geometry.getCoordinates();
    const unwrapped = polygons.map((polygon) => polygon.map(unwrapRing));
    geometry.setCoordinates(geometry.getType() === 'Polygon' ? unwrapped[0] : unwrapped);
    geometry.transform('EPSG:4326', 'EPSG:3857');
  }
  baseSource.addFeatures(features);
}

// Fetch each tile ourselves: the run and valid time it shows are in its headers, and a refusal
// is JSON whose message the user must see.
function loadTile(tile, src) {
  const image = tile.getImage();
  fetch(src).then(async (response) => {
    if (!response.ok) throw await errorOf(response);
    noteShown(src, response.headers);
    const url = URL.createObjectURL(await response.blob());
    image.addEventListener('load', () => URL.revokeObjectURL(url), { once: true });
    image.src = url;
  }).catch((error) => {
    showError(error, 'Map tile');
    tile.setState(TILE_ERROR);
    if (tileKeyOf(src) === state.tileKey) showRefused(error);
  });
}

function setTilesBusy(delta) {
  state.pendingTiles = Math.max(0, state.pendingTiles + delta);
  document.body.dataset.tiles = state.pendingTiles ? 'loading' : 'idle';
}
forecastSource.on('tileloadstart', () => setTilesBusy(1));
forecastSource.on(['tileloadend', 'tileloaderror'], () => setTilesBusy(-1));

// ---- what the page shows -------------------------------------------------------------------

function currentTime() {
  return state.run ? state.times[state.timeIndex] ?? null : null;
}

// The value of the ensemble dimension shown: a member, a statistic or a probability.
function memberParameter() {
  if (state.statistic === THRESHOLD) return state.threshold || state.member;
  return state.statistic || state.member;
}

function isProbability() {
  return state.statistic === THRESHOLD && Boolean(state.threshold);
}

// The style to ask for: none where the server picks it (a change is drawn diverging around
// zero, a probability 0–100 %), else the one chosen.
function styleParameter() {
  return state.baseline || isProbability() ? '' : state.style;
}

// The products asked for besides the run, time, level and member.
function productParameters() {
  return { baseline: state.baseline, accumulate: state.accumulate };
}

function hoursOf(duration) {
  const match = /^PT(\d+)H$/.exec(duration);
  return match ? Number(match[1]) : NaN;
}

function thresholdText(label) {
  const [direction, value] = label.split(':');
  return `${direction} ${value}${state.dataUnits ? ` ${state.dataUnits}` : ''}`;
}

// What is shown besides the layer and run, as the page says it: ", mean of the members,
// 24 h sums, change since run …".
function selectionText() {
  const parts = [];
  if (isProbability()) parts.push(`% of members ${thresholdText(state.threshold)}`);
  else if (state.statistic && state.statistic !== THRESHOLD) {
    parts.push(`${statisticTitle(state.statistic).toLowerCase()} of the members`);
  } else if (state.member) parts.push(`member ${state.member}`);
  if (state.accumulate) parts.push(`${hoursOf(state.accumulate)} h sums`);
  const base = state.run && baselineRun(state.run);
  if (base) parts.push(`change since run ${base.label}`);
  return parts.length ? `, ${parts.join(', ')}` : '';
}

function statisticTitle(label) {
  if (STATISTIC_TITLES[label]) return STATISTIC_TITLES[label];
  const rank = Number(label.slice(1));
  return `${rank}${rank % 10 === 1 && rank !== 11 ? 'st' : rank % 10 === 2 && rank !== 12 ? 'nd'
    : rank % 10 === 3 && rank !== 13 ? 'rd' : 'th'} percentile`;
}

function leadText(run, time) {
  const hours = (Date.parse(time) - Date.parse(run)) / 3600e3;
  return hours >= 0 ? `T+${hours}h` : `T${hours}h`;
}

// The run and valid time on the map, as the server said in the tile's headers.
function noteShown(src, headers) {
  const run = headers.get('X-Fewsmap-Run');
  const valid = headers.get('X-Fewsmap-Valid-Time');
  if (!run || !valid) return;
  const key = tileKeyOf(src);
  state.shownByKey.set(key, [run, valid]);
  if (key === state.tileKey) showShown(run, valid);
}

// The layer and query of a tile URL: which request of the user's it answers.
function tileKeyOf(src) {
  const url = new URL(src, window.location.href);
  return `${url.pathname.split('/')[2]}${url.search}`;
}

// The server refused the tiles asked for: say so, and hide the previous request's tiles that
// the map would otherwise go on showing in their place.
function showRefused(error) {
  const shown = $('shown');
  delete shown.dataset.run;
  delete shown.dataset.validTime;
  shown.dataset.refused = 'true';
  shown.textContent = `${state.layer.title}${selectionText()} — run ${state.run.label}, valid `
    + `${currentTime()}: not shown (${errorMessage(error)})`;
  forecastLayer.setVisible(false);
}

function showShown(run, valid) {
  const shown = $('shown');
  shown.dataset.run = run;
  shown.dataset.validTime = valid;
  shown.textContent = `${state.layer.title}${selectionText()} — run ${run}, valid ${valid} `
    + `(${leadText(run, valid.split('/')[0])})`;
}

function showRequested() {
  const shown = $('shown');
  delete shown.dataset.run;
  delete shown.dataset.validTime;
  shown.textContent = `${state.layer.title}${selectionText()} — run ${state.run.label}, valid `
    + `${currentTime()} (loading…)`;
}

function updateTimeLabel() {
  const time = currentTime();
  $('time-label').value = time ? `${time} (${leadText(state.run.label, time)})` : '';
}

function tileQueryString() {
  return query({
    run: state.run.label,
    time: currentTime(),
    elevation: state.elevation,
    member: memberParameter(),
    style: styleParameter(),
    ...productParameters(),
  });
}

// No valid time to show (a change between runs sharing none): say why, draw nothing.
function showNoTime() {
  const shown = $('shown');
  delete shown.dataset.run;
  delete shown.dataset.validTime;
  shown.dataset.refused = 'true';
  const base = baselineRun(state.run);
  shown.textContent = `${state.layer.title}${selectionText()} — run ${state.run.label}: `
    + (base ? `it shares no valid time with run ${base.label}` : 'no valid time holds a '
      + `whole ${hoursOf(state.accumulate)} h window`);
  state.tileKey = '';
  forecastLayer.setVisible(false);
  updateTimeLabel();
}

function updateTiles() {
  if (!state.layer || !state.run) return;
  writeHash();
  if (!currentTime()) {
    showNoTime();
    return;
  }
  const layer = encodeURIComponent(state.layer.name);
  const search = `?${tileQueryString()}`;
  state.tileKey = `${layer}${search}`;
  forecastLayer.setVisible(true); // a new request: hidden only while its tiles are refused
  delete $('shown').dataset.refused;
  const tile = forecastSource.getTilePixelRatio(1) > 1 ? '{y}@2x.png' : '{y}.png';
  forecastSource.setUrl(`/tiles/${layer}/{z}/{x}/${tile}${search}`);
  // Tiles seen before may come from the map's cache, without a request: reuse what they said.
  const known = state.shownByKey.get(state.tileKey);
  if (known) showShown(...known);
  else showRequested();
  updateTimeLabel();
}

// ---- layers, runs and dimensions -----------------------------------------------------------

function buildLayerTree(capabilities) {
  const container = $('layers');
  container.replaceChildren();
  const groups = capabilities.groups.length ? capabilities.groups
    : [{ name: '', title: 'Layers' }];
  for (const group of groups) {
    const members = capabilities.layers.filter((l) => !group.name || l.groupName === group.name);
    if (!members.length) continue;
    const details = document.createElement('details');
    details.open = true;
    const summary = document.createElement('summary');
    summary.textContent = group.title || group.name;
    details.appendChild(summary);
    for (const layer of members) {
      const label = document.createElement('label');
      label.className = 'layer';
      const radio = document.createElement('input');
      radio.type = 'radio';
      radio.name = 'layer';
      radio.value = layer.name;
      radio.addEventListener('change', () => selectLayer(layer.name));
      label.append(radio, ` ${layer.title}`);
      label.title = layer.name;
      details.appendChild(label);
    }
    container.appendChild(details);
  }
}

function fillSelect(select, options, selected) {
  select.replaceChildren(...options.map(([value, label]) => {
    const option = document.createElement('option');
    option.value = value;
    option.textContent = label;
    return option;
  }));
  if (selected !== undefined) select.value = selected;
}

function showDimensions(layer) {
  const levels = layer.elevation ? layer.elevation.irregularTicks : [];
  $('elevation-field').hidden = !levels.length;
  fillSelect($('elevation'), [LAYER_DEFAULT,
    ...levels.map((l) => [String(l), `${l} ${layer.elevation.units}`])]);
  state.elevation = '';
  const ids = layer.ensembles ? layer.ensembles[0].ensembleMemberIds : [];
  state.statistics = ids.filter((id) => STATISTIC_LABEL.test(id));
  state.thresholds = ids.filter((id) => THRESHOLD_LABEL.test(id));
  state.members = ids.filter((id) => !STATISTIC_LABEL.test(id) && !THRESHOLD_LABEL.test(id));
  fillSelect($('member'), [LAYER_DEFAULT, ...state.members.map((m) => [m, m])]);
  state.member = '';
  const ensemble = state.statistics.length + state.thresholds.length > 0;
  $('statistic-field').hidden = !ensemble;
  fillSelect($('statistic'), [['', 'one member'],
    ...state.statistics.map((s) => [s, statisticTitle(s)]),
    ...(ensemble ? [[THRESHOLD, '% of members above/below a value']] : [])], '');
  state.statistic = '';
  state.threshold = '';
  state.dataUnits = '';
  fillSelect($('threshold-pick'), [...state.thresholds.map((t) => [t, t.replace(':', ' ')]),
    [OTHER_THRESHOLD, 'another value…']]);
  $('threshold-value').value = '';
  $('threshold-problem').textContent = '';
  $('threshold-units').textContent = '';
  fillSelect($('style'), layer.styles.map((s) => [s.name, s.title]));
  state.style = ''; // the layer's default (the first offered) until another is picked
  state.baseline = '';
  $('change').checked = false;
  state.accumulate = '';
  $('accumulate').value = '';
  $('accumulate-field').hidden = !layer.styles.some((s) => ACCUMULABLE_STYLES.has(s.name));
  showProductFields();
}

// Show the fields the current choices call for.
function showProductFields() {
  const layer = state.layer;
  $('member-field').hidden = !state.members.length || Boolean(state.statistic);
  $('threshold-field').hidden = state.statistic !== THRESHOLD;
  $('threshold-other').hidden = $('threshold-pick').value !== OTHER_THRESHOLD;
  // A change is drawn diverging and a probability in %: the server picks their style.
  $('style-field').hidden = layer.styles.length < 2 || Boolean(state.baseline) || isProbability();
  const changeLayer = layer.name.endsWith(CHANGE_LAYER_SUFFIX);
  $('change-field').hidden = changeLayer || state.runs.length < 2;
  const earlier = state.run ? earlierRuns(state.run) : [];
  $('change').disabled = !earlier.length;
  $('change-field').title = earlier.length ? ''
    : 'The oldest run has no earlier run to compare with';
  $('baseline-field').hidden = !state.baseline;
}

// The runs older than `run`, newest first (state.runs is newest first).
function earlierRuns(run) {
  return state.runs.slice(state.runs.indexOf(run) + 1);
}

// The run a change is taken against, or null.
function baselineRun(run) {
  if (!state.baseline) return null;
  if (state.baseline === 'previous') return earlierRuns(run)[0] ?? null;
  return state.runs.find((r) => r.label === state.baseline) ?? null;
}

// Offer the runs older than the selected one as baselines; a baseline no longer older is
// dropped for the previous run, and the change is off where there is none.
function fillBaselines() {
  const earlier = earlierRuns(state.run);
  if (!earlier.length) {
    state.baseline = '';
    $('change').checked = false;
  } else if (state.baseline && state.baseline !== 'previous'
             && !earlier.some((r) => r.label === state.baseline)) {
    state.baseline = 'previous';
  }
  fillSelect($('baseline'), earlier.map((r, i) => [i ? r.label : 'previous',
    i ? r.label : `${r.label} (previous)`]), state.baseline || 'previous');
  showProductFields();
}

// Whether the window of a sum ending at `time` starts at the run's start or one of its times
// (the server refuses any other: fewsmap/products/accumulate.py).
function windowFits(run, time) {
  const start = Date.parse(time) - hoursOf(state.accumulate) * 3600e3;
  return start === Date.parse(run.label) || run.times.some((t) => Date.parse(t) === start);
}

// The valid times offered: the run's, those of a complete window where sums are shown, and
// those the baseline run holds too where a change is.
function timesShown(run) {
  const whole = (r) => (state.accumulate ? r.times.filter((t) => windowFits(r, t)) : r.times);
  const times = whole(run);
  const base = baselineRun(run);
  if (!base) return times;
  const shared = new Set(whole(base).map(Date.parse));
  return times.filter((t) => shared.has(Date.parse(t)));
}

function zoomTo(layer) {
  const box = layer.boundingBox;
  if (!box || box.crs !== 'EPSG:3857') return;
  const extent = [box.minx, box.miny, box.maxx, box.maxy].map(Number);
  map.getView().fit(extent, { padding: [20, 20, 20, 20] });
}

async function selectLayer(name, wanted = null) {
  const layer = state.capabilities.layers.find((l) => l.name === name);
  document.querySelector(`input[name="layer"][value="${CSS.escape(name)}"]`).checked = true;
  state.layer = layer;
  state.run = null; // until this layer's runs are known, clicks and steps wait
  state.runs = [];
  stopPlaying();
  closeHydrograph();
  showDimensions(layer);
  zoomTo(layer);
  let answer;
  let tileJson;
  try {
    [answer, tileJson] = await Promise.all([
      getJson(`${CAPABILITIES}&${query({
        layers: name, startForecastTime: '1970-01-01T00:00:00Z', forecastCount: MAX_RUNS })}`),
      // an ensemble's thresholds are in the layer's stored units, which only TileJSON names
      $('statistic-field').hidden ? null
        : getJson(`/tiles/${encodeURIComponent(name)}/tilejson.json`).catch(() => null)]);
  } catch (error) {
    showError(error, `Runs of ${name}`);
    return;
  }
  if (state.layer !== layer) return; // another layer was picked meanwhile
  if (tileJson) showThresholdUnits(tileJson);
  // Per-run layers are `<layer>-<T0>`; the answer may hold others (a derived `:change` layer).
  state.runs = answer.layers.filter((l) => l.name.startsWith(`${name}-`) && l.times
                                    && l.times.length)
    .map((l) => ({ label: l.externalForecastTime, times: l.times, timesDefault: l.timesDefault }))
    .reverse();
  if (!state.runs.length) {
    showError({ message: `layer ${name} has no published run yet` }, 'Layer');
    return;
  }
  fillSelect($('run'), state.runs.map((r, i) => [r.label, i ? r.label : `${r.label} (latest)`]));
  const run = wanted && state.runs.some((r) => r.label === wanted.get('run')) ? wanted.get('run')
    : state.runs[0].label;
  state.run = state.runs.find((r) => r.label === run);
  if (wanted) restoreChoices(wanted);
  selectRun(run, wanted && wanted.get('time'));
}

function showThresholdUnits(tileJson) {
  const definition = tileJson.fewsmap.styleDefinitions[0] || {};
  state.dataUnits = definition.data_units || definition.units || '';
  $('threshold-units').textContent = state.dataUnits
    ? `Thresholds in ${state.dataUnits} (the layer's stored units)` : '';
}

// Select a run, keeping the valid time on the map when the run offers it.
function selectRun(label, keepTime) {
  const run = state.runs.find((r) => r.label === label);
  state.run = run;
  $('run').value = label;
  fillBaselines();
  state.times = timesShown(run);
  const kept = keepTime ? state.times.indexOf(keepTime) : -1;
  const preferred = state.times.indexOf(run.timesDefault);
  state.timeIndex = kept >= 0 ? kept : Math.max(preferred, 0);
  const slider = $('time');
  slider.max = String(Math.max(state.times.length - 1, 0));
  slider.value = String(state.timeIndex);
  slider.disabled = state.times.length < 2;
  clearError();
  updateTiles();
  updateLegend();
  if (state.point) showHydrograph(state.point);
}

// A member, statistic, threshold, baseline or sum was chosen: redraw the map, its legend and
// the hydrograph (the run stays; the valid times offered may change).
function selectionChanged() {
  showProductFields();
  selectRun(state.run.label, currentTime());
}

function setTimeIndex(index) {
  if (!state.run || !state.times.length) return; // a layer's runs are still loading
  const count = state.times.length;
  state.timeIndex = ((index % count) + count) % count;
  $('time').value = String(state.timeIndex);
  updateTiles();
  if (state.point) markHydrographTime();
}

// ---- legend --------------------------------------------------------------------------------

// The legend of what the map shows: the run, the statistic (a probability's is in %), the
// change (diverging) and the sums (their range).
function legendQuery() {
  return query({ request: 'GetLegendGraphic', format: 'application/json',
                 layers: `${state.layer.name}-${state.run.label}`, style: styleParameter(),
                 dim_ensemble_member: memberParameter(), ...productParameters() });
}

async function updateLegend() {
  const container = $('legend');
  const { layer, run } = state;
  const layerId = `${layer.name}-${run.label}`;
  const asked = legendQuery();
  let legend;
  try {
    legend = await getJson(`/wms?${asked}`);
  } catch (error) {
    container.replaceChildren();
    delete container.dataset.layer;
    delete container.dataset.query;
    showError(error, 'Legend');
    return;
  }
  if (state.layer !== layer || state.run !== run || legendQuery() !== asked) return; // stale
  const list = document.createElement('ul');
  for (const entry of [...legend.legend].reverse()) {
    const item = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = entry.color;
    item.append(swatch, ` ${entry.label}`);
    list.appendChild(item);
  }
  const unit = document.createElement('p');
  unit.className = 'unit';
  unit.textContent = legend.unit || '';
  container.replaceChildren(unit, list);
  // Which legend this is (it arrives after the tiles may have): scripts wait for it.
  Object.assign(container.dataset, { layer: layerId, style: styleParameter(), query: asked });
}

// ---- hydrograph ----------------------------------------------------------------------------

function closeHydrograph() {
  state.point = null;
  state.chart = null;
  state.catchment = null;
  catchmentLayer.changed();
  pointSource.clear();
  $('hydrograph').hidden = true;
  delete $('hydrograph').dataset.state;
  map.updateSize(); // the map takes the panel's room
}

function toSeries(entry) {
  return { label: entry.reference_time, times: entry.times.map(Date.parse), values: entry.values };
}

// The members' lowest and highest value at each time.
function memberBand(answer) {
  const series = answer.series;
  const times = series[0].times.map(Date.parse);
  const pick = (reduce) => times.map((_, i) => {
    const values = series.map((s) => s.values[i]).filter((v) => v !== null);
    return values.length ? reduce(...values) : null;
  });
  return { times, low: pick(Math.min), high: pick(Math.max) };
}

// Whether the members' range belongs on the chart: not beside a probability (in %) or a
// spread (std), which are not values of the layer.
function bandWanted() {
  return state.members.length > 0 && !isProbability() && state.statistic !== 'std';
}

function bandText() {
  return state.statistic ? ' and the members\' range'
    : `, member ${state.member || '(default)'} and the members' range`;
}

async function showHydrograph(point) {
  if (state.catchment) {
    showCatchment(state.catchment, point);
    return;
  }
  const [lon, lat] = point;
  state.point = point;
  const layer = state.layer;
  const run = state.run;
  const base = { layer: layer.name, x: lon.toFixed(5), y: lat.toFixed(5),
                 elevation: state.elevation, ...productParameters() };
  const panel = $('hydrograph');
  panel.hidden = false;
  map.updateSize();
  panel.dataset.state = 'loading';
  state.chart = null;
  Object.assign(panel.dataset, { lon: base.x, lat: base.y, run: run.label });
  delete panel.dataset.catchment;
  $('hydrograph-title').textContent = `${layer.title} at ${base.y}, ${base.x} — loading…`;
  pointSource.clear();
  pointSource.addFeature(new ol.Feature(new ol.geom.Point(ol.proj.fromLonLat([lon, lat]))));
  // The plume: every run with values in the selected run's window (API: runs=all + start/end).
  const plumeUrl = `/api/timeseries?${query({ ...base, member: memberParameter(), runs: 'all',
    start: run.label, end: run.times.at(-1) })}`;
  const bandUrl = `/api/timeseries?${query({ ...base, run: run.label, member: 'all' })}`;
  let plume;
  let members = null;
  try {
    [plume, members] = await Promise.all([
      getJson(plumeUrl), bandWanted() ? getJson(bandUrl) : Promise.resolve(null)]);
  } catch (error) {
    if (state.point !== point || state.run !== run) return;
    panel.dataset.state = 'error';
    $('chart').replaceChildren();
    $('hydrograph-title').textContent = `${layer.title} at ${base.y}, ${base.x}`;
    showError(error, 'Time series');
    return;
  }
  if (state.point !== point || state.run !== run) return; // superseded meanwhile
  const main = plume.series.find((s) => s.reference_time === run.label);
  const cell = plume.cell;
  $('hydrograph-title').textContent = `${layer.title}${selectionText()} — run ${run.label}, `
    + `cell ${cell.lat.toFixed(3)}, ${cell.lon.toFixed(3)}`
    + (members ? bandText() : '');
  state.chart = {
    main: main ? toSeries(main) : { label: run.label, times: [], values: [] },
    plume: plume.series.filter((s) => s !== main).map(toSeries),
    band: members && members.series.length ? memberBand(members) : null,
    units: plume.units, // the answer's own: the chart never assumes them
    zeroLine: Boolean(state.baseline),
    valueRange: isProbability() && !state.baseline ? [0, 100] : null,
  };
  markHydrographTime();
  panel.dataset.state = 'ready';
}

// A catchment's mean over the selected run (and the members' range): the same chart.
async function showCatchment([set, id], point) {
  state.point = point;
  state.catchment = [set, id];
  catchmentLayer.changed();
  pointSource.clear();
  const { layer, run } = state;
  const panel = $('hydrograph');
  panel.hidden = false;
  map.updateSize();
  panel.dataset.state = 'loading';
  Object.assign(panel.dataset, { catchment: id, run: run.label });
  delete panel.dataset.lon;
  delete panel.dataset.lat;
  state.chart = null;
  $('hydrograph-title').textContent = `${layer.title}, mean over ${id} — loading…`;
  // The catchment API applies the same products as point series (change, sums).
  const base = { layer: layer.name, run: run.label, elevation: state.elevation,
                 ...productParameters() };
  const path = `/api/catchments/${encodeURIComponent(set)}/${encodeURIComponent(id)}`;
  let answer;
  let members = null;
  try {
    [answer, members] = await Promise.all([
      getJson(`${path}?${query({ ...base, member: memberParameter() })}`),
      bandWanted() ? getJson(`${path}?${query({ ...base, member: 'all' })}`)
        : Promise.resolve(null)]);
  } catch (error) {
    if (state.point !== point || state.run !== run) return;
    panel.dataset.state = 'error';
    $('chart').replaceChildren();
    showError(error, 'Catchment series');
    return;
  }
  if (state.point !== point || state.run !== run) return; // superseded meanwhile
  const catchment = answer.catchment;
  const shown = selectionText(); // what the chart shows
  $('hydrograph-title').textContent = `${layer.title}${shown} — run ${run.label}, mean over `
    + `${catchment.id} (${catchment.cells} cells)`
    + (members ? bandText() : '');
  state.chart = {
    main: toSeries(answer.series[0]),
    plume: [],
    band: members && members.series.length ? memberBand(members) : null,
    units: answer.units,
    valueRange: isProbability() ? [0, 100] : null,
  };
  markHydrographTime();
  panel.dataset.state = 'ready';
}

async function selectCatchments(set) {
  catchmentSource.clear();
  state.catchment = null;
  delete $('catchments').dataset.loaded;
  if (!set) return;
  try {
    const collection = await getJson(`/api/catchments/${encodeURIComponent(set)}`);
    catchmentSource.addFeatures(new ol.format.GeoJSON().readFeatures(collection, {
      featureProjection: 'EPSG:3857' }));
    Object.assign($('catchments').dataset, { loaded: set });
  } catch (error) {
    showError(error, `Catchments ${set}`);
  }
}

async function loadCatchmentSets() {
  const answer = await getJson('/api/catchments');
  if (!answer.catchments.length) return;
  fillSelect($('catchments'), [['', 'none'],
    ...answer.catchments.map((s) => [s.name, `${s.title} (${s.count})`])], '');
  $('catchments-field').hidden = false;
}

// Move the chart's time marker to the time on the map (a redraw; no new request).
function markHydrographTime() {
  if (state.chart) {
    drawHydrograph($('chart'), { ...state.chart, currentTime: Date.parse(currentTime()) });
  }
}

map.on('singleclick', (event) => {
  if (!state.run) return;
  const [lon, lat] = ol.proj.toLonLat(event.coordinate);
  const point = [((lon + 540) % 360) - 180, lat];
  // By geometry, not by pixel: OpenLayers' pixel hit detection reads the canvas back.
  const hit = catchmentSource.getFeaturesAtCoordinate(event.coordinate)[0];
  state.catchment = hit ? [$('catchments').value, hit.getId()] : null;
  showHydrograph(point);
});

// ---- animation -----------------------------------------------------------------------------

let player = null;

function stopPlaying() {
  if (player !== null) clearInterval(player);
  player = null;
  $('play').textContent = '▶';
  $('play').setAttribute('aria-label', 'Play');
}

function togglePlay() {
  if (player !== null) {
    stopPlaying();
    return;
  }
  $('play').textContent = '❚❚';
  $('play').setAttribute('aria-label', 'Pause');
  // Advance only once the frame on the map has loaded: no skipped frames on a slow server.
  player = setInterval(() => {
    if (!state.pendingTiles) setTimeIndex(state.timeIndex + 1);
  }, PLAY_INTERVAL_MS);
}

// ---- controls ------------------------------------------------------------------------------

let sliderTimer = null;
$('time').addEventListener('input', () => {
  if (!state.run) return;
  state.timeIndex = Number($('time').value);
  updateTimeLabel();
  clearTimeout(sliderTimer); // dragging: ask for tiles once the slider rests
  sliderTimer = setTimeout(() => setTimeIndex(state.timeIndex), 150);
});
$('step-back').addEventListener('click', () => setTimeIndex(state.timeIndex - 1));
$('step-forward').addEventListener('click', () => setTimeIndex(state.timeIndex + 1));
$('play').addEventListener('click', togglePlay);
$('run').addEventListener('change', () => selectRun($('run').value, currentTime()));
for (const name of ['elevation', 'member', 'style']) {
  $(name).addEventListener('change', () => {
    state[name] = $(name).value;
    updateTiles();
    if (name !== 'elevation') updateLegend();
    if (state.point) showHydrograph(state.point);
  });
}

// A threshold typed in: `above:X` if X is a number the server takes, else null.
function thresholdOf(direction, text) {
  const trimmed = text.trim();
  if (!NUMBER.test(trimmed) || Math.abs(Number(trimmed)) > FLOAT32_MAX) return null;
  return `${direction}:${Number(trimmed)}`;
}

function applyThreshold() {
  const picked = $('threshold-pick').value;
  const problem = $('threshold-problem');
  let threshold = picked;
  if (picked === OTHER_THRESHOLD) {
    threshold = thresholdOf($('threshold-direction').value, $('threshold-value').value);
    if (threshold === null) {
      problem.textContent = `"${$('threshold-value').value.trim().slice(0, 40)}" is not a `
        + 'number: type a value such as 20 or -5.5';
      $('threshold-value').setAttribute('aria-invalid', 'true');
      return;
    }
  }
  problem.textContent = '';
  $('threshold-value').removeAttribute('aria-invalid');
  state.threshold = threshold;
  selectionChanged();
}

$('statistic').addEventListener('change', () => {
  state.statistic = $('statistic').value;
  state.threshold = '';
  showProductFields();
  if (state.statistic === THRESHOLD) {
    // a listed threshold is shown at once; another waits for its value
    if ($('threshold-pick').value !== OTHER_THRESHOLD) {
      applyThreshold();
      return;
    }
    $('threshold-value').focus(); // until a value is given, the member is shown
  }
  selectionChanged();
});
$('threshold-pick').addEventListener('change', () => {
  showProductFields();
  if ($('threshold-pick').value !== OTHER_THRESHOLD) applyThreshold();
  else $('threshold-value').focus();
});
$('threshold-apply').addEventListener('click', applyThreshold);
$('threshold-value').addEventListener('keydown', (event) => {
  if (event.key === 'Enter') applyThreshold();
});
$('change').addEventListener('change', () => {
  state.baseline = $('change').checked ? $('baseline').value || 'previous' : '';
  selectionChanged();
});
$('baseline').addEventListener('change', () => {
  state.baseline = $('baseline').value;
  selectionChanged();
});
$('accumulate').addEventListener('change', () => {
  state.accumulate = $('accumulate').value;
  selectionChanged();
});
$('opacity').addEventListener('input', () => forecastLayer.setOpacity($('opacity').value / 100));
$('basemap').addEventListener('change', () => baseMap.setVisible($('basemap').checked));
$('hydrograph-close').addEventListener('click', closeHydrograph);
$('catchments').addEventListener('change', () => {
  selectCatchments($('catchments').value);
  writeHash();
});

// ---- the URL's hash: what is shown, so a view can be shared or bookmarked ------------------

function writeHash() {
  if (!state.layer || !state.run) return;
  const hash = query({
    layer: state.layer.name,
    run: state.run === state.runs[0] ? '' : state.run.label, // absent: the latest run
    time: currentTime(),
    elevation: state.elevation,
    member: memberParameter(),
    style: state.style,
    ...productParameters(),
    catchments: $('catchments').value,
  });
  if (window.location.hash.slice(1) !== hash) {
    window.history.replaceState(null, '', `#${hash}`);
  }
}

function readHash() {
  return new URLSearchParams(window.location.hash.slice(1));
}

// Take over the choices `wanted` names that this layer and run offer (others are ignored).
function restoreChoices(wanted) {
  const offered = (select, value) => [...$(select).options].some((o) => o.value === value);
  const elevation = wanted.get('elevation') || '';
  if (offered('elevation', elevation)) state.elevation = $('elevation').value = elevation;
  const style = wanted.get('style') || '';
  if (style && offered('style', style)) state.style = $('style').value = style;
  const member = wanted.get('member') || '';
  if (state.members.includes(member)) state.member = $('member').value = member;
  else if (state.statistics.includes(member)) state.statistic = $('statistic').value = member;
  else if (THRESHOLD_LABEL.test(member) && !$('statistic-field').hidden) {
    const [direction, value] = member.split(':');
    const threshold = thresholdOf(direction, value);
    if (threshold) {
      state.statistic = $('statistic').value = THRESHOLD;
      state.threshold = threshold;
      if (offered('threshold-pick', threshold)) $('threshold-pick').value = threshold;
      else {
        $('threshold-pick').value = OTHER_THRESHOLD;
        $('threshold-direction').value = direction;
        $('threshold-value').value = value;
      }
    }
  }
  const accumulate = wanted.get('accumulate') || '';
  if (!$('accumulate-field').hidden && offered('accumulate', accumulate)) {
    state.accumulate = $('accumulate').value = accumulate;
  }
  const baseline = wanted.get('baseline') || '';
  const earlier = earlierRuns(state.run);
  if (baseline === 'previous' ? earlier.length : earlier.some((r) => r.label === baseline)) {
    state.baseline = baseline;
    $('change').checked = true;
  }
  showProductFields();
}

// A hash typed or pasted into the address bar: show what it names.
window.addEventListener('hashchange', () => {
  const wanted = readHash();
  if (!state.capabilities) return;
  const layer = state.capabilities.layers.find((l) => l.name === wanted.get('layer'));
  if (layer) selectLayer(layer.name, wanted);
});

async function start() {
  document.body.dataset.tiles = 'idle';
  loadBaseMap().catch((error) => showError(error, 'Base map'));
  const wanted = readHash();
  loadCatchmentSets().then(() => {
    const set = wanted.get('catchments');
    if (set && [...$('catchments').options].some((o) => o.value === set)) {
      $('catchments').value = set;
      selectCatchments(set);
      writeHash();
    }
  }).catch((error) => showError(error, 'Catchment sets'));
  try {
    state.capabilities = await getJson(`${CAPABILITIES}&onlyHeaders=true`);
  } catch (error) {
    $('shown').textContent = 'No layers.';
    showError(error, 'GetCapabilities');
    return;
  }
  $('title').textContent = state.capabilities.title;
  document.title = `${state.capabilities.title} — fewsmap viewer`;
  buildLayerTree(state.capabilities);
  if (!state.capabilities.layers.length) {
    $('shown').textContent = 'The service publishes no layer yet.';
    return;
  }
  const named = state.capabilities.layers.find((l) => l.name === wanted.get('layer'));
  await selectLayer(named ? named.name : state.capabilities.layers[0].name,
                    named ? wanted : null);
}

// For scripts and tests driving the page (and curious users in the console).
window.fewsmapViewer = { map, state, selectLayer, selectRun, setTimeIndex, showHydrograph,
                         selectCatchments, showCatchment, memberParameter, legendQuery };
start();
