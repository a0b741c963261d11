// fewsmap's built-in viewer: layers from the FEWS JSON capabilities, the map from fewsmap's XYZ
// tiles (/tiles/{layer}/{z}/{x}/{y}.png), legends from GetLegendGraphic JSON, a hydrograph
// from /api/timeseries, and catchment outlines (GeoJSON from /api/catchments) whose means
// /api/catchments/<set>/<id> draws. `ol` is the vendored OpenLayers full build (see index.html for why).
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

const state = {
  capabilities: null,
  layer: null, // the capabilities entry of the selected layer
  runs: [], // [{label, times: [iso], timesDefault}], newest first
  run: null,
  timeIndex: 0,
  elevation: '',
  member: '',
  members: [], // the selected layer's ensemble member labels
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
  return state.run ? state.run.times[state.timeIndex] : null;
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
  shown.textContent = `${state.layer.title} — run ${state.run.label}, valid ${currentTime()}: `
    + `not shown (${errorMessage(error)})`;
  forecastLayer.setVisible(false);
}

function showShown(run, valid) {
  const shown = $('shown');
  shown.dataset.run = run;
  shown.dataset.validTime = valid;
  shown.textContent = `${state.layer.title} — run ${run}, valid ${valid} `
    + `(${leadText(run, valid.split('/')[0])})`;
}

function showRequested() {
  const shown = $('shown');
  delete shown.dataset.run;
  delete shown.dataset.validTime;
  shown.textContent = `${state.layer.title} — run ${state.run.label}, valid ${currentTime()} `
    + '(loading…)';
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
    member: state.member,
    style: state.style,
  });
}

function updateTiles() {
  if (!state.layer || !state.run) return;
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
  state.members = layer.ensembles ? layer.ensembles[0].ensembleMemberIds : [];
  $('member-field').hidden = !state.members.length;
  fillSelect($('member'), [LAYER_DEFAULT, ...state.members.map((m) => [m, m])]);
  state.member = '';
  $('style-field').hidden = layer.styles.length < 2;
  fillSelect($('style'), layer.styles.map((s) => [s.name, s.title]));
  state.style = layer.styles.length > 1 ? $('style').value : '';
}

function zoomTo(layer) {
  const box = layer.boundingBox;
  if (!box || box.crs !== 'EPSG:3857') return;
  const extent = [box.minx, box.miny, box.maxx, box.maxy].map(Number);
  map.getView().fit(extent, { padding: [20, 20, 20, 20] });
}

async function selectLayer(name) {
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
  try {
    answer = await getJson(`${CAPABILITIES}&${query({
      layers: name, startForecastTime: '1970-01-01T00:00:00Z', forecastCount: MAX_RUNS })}`);
  } catch (error) {
    showError(error, `Runs of ${name}`);
    return;
  }
  if (state.layer !== layer) return; // another layer was picked meanwhile
  state.runs = answer.layers.filter((l) => l.name !== name && l.times && l.times.length)
    .map((l) => ({ label: l.externalForecastTime, times: l.times, timesDefault: l.timesDefault }))
    .reverse();
  if (!state.runs.length) {
    showError({ message: `layer ${name} has no published run yet` }, 'Layer');
    return;
  }
  fillSelect($('run'), state.runs.map((r, i) => [r.label, i ? r.label : `${r.label} (latest)`]));
  selectRun(state.runs[0].label, null);
}

// Select a run, keeping the valid time on the map when the run has it.
function selectRun(label, keepTime) {
  const run = state.runs.find((r) => r.label === label);
  state.run = run;
  $('run').value = label;
  const kept = keepTime ? run.times.indexOf(keepTime) : -1;
  const preferred = run.times.indexOf(run.timesDefault);
  state.timeIndex = kept >= 0 ? kept : Math.max(preferred, 0);
  const slider = $('time');
  slider.max = String(run.times.length - 1);
  slider.value = String(state.timeIndex);
  slider.disabled = run.times.length < 2;
  clearError();
  updateTiles();
  updateLegend();
  if (state.point) showHydrograph(state.point);
}

function setTimeIndex(index) {
  if (!state.run) return; // a layer's runs are still loading
  const count = state.run.times.length;
  state.timeIndex = ((index % count) + count) % count;
  $('time').value = String(state.timeIndex);
  updateTiles();
  if (state.point) markHydrographTime();
}

// ---- legend --------------------------------------------------------------------------------

async function updateLegend() {
  const container = $('legend');
  const { layer, run, style } = state;
  const layerId = `${layer.name}-${run.label}`; // the run's own colour range
  let legend;
  try {
    legend = await getJson(`/wms?${query({
      request: 'GetLegendGraphic', format: 'application/json', layers: layerId, style })}`);
  } catch (error) {
    container.replaceChildren();
    delete container.dataset.layer;
    showError(error, 'Legend');
    return;
  }
  if (state.layer !== layer || state.run !== run || state.style !== style) return; // stale
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
  Object.assign(container.dataset, { layer: layerId, style });
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
                 elevation: state.elevation };
  const panel = $('hydrograph');
  panel.hidden = false;
  map.updateSize();
  panel.dataset.state = 'loading';
  state.chart = null;
  Object.assign(panel.dataset, { lon: base.x, lat: base.y, run: run.label });
  $('hydrograph-title').textContent = `${layer.title} at ${base.y}, ${base.x} — loading…`;
  pointSource.clear();
  pointSource.addFeature(new ol.Feature(new ol.geom.Point(ol.proj.fromLonLat([lon, lat]))));
  // The plume: every run with values in the selected run's window (API: runs=all + start/end).
  const plumeUrl = `/api/timeseries?${query({ ...base, member: state.member, runs: 'all',
    start: run.label, end: run.times.at(-1) })}`;
  const bandUrl = `/api/timeseries?${query({ ...base, run: run.label, member: 'all' })}`;
  let plume;
  let members = null;
  try {
    [plume, members] = await Promise.all([
      getJson(plumeUrl), state.members.length ? getJson(bandUrl) : Promise.resolve(null)]);
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
  $('hydrograph-title').textContent = `${layer.title} — run ${run.label}, `
    + `cell ${cell.lat.toFixed(3)}, ${cell.lon.toFixed(3)}`
    + (state.members.length ? `, member ${state.member || '(default)'} and the members' `
      + 'range' : '');
  state.chart = {
    main: main ? toSeries(main) : { label: run.label, times: [], values: [] },
    plume: plume.series.filter((s) => s !== main).map(toSeries),
    band: members ? memberBand(members) : null,
    units: plume.units,
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
  state.chart = null;
  $('hydrograph-title').textContent = `${layer.title}, mean over ${id} — loading…`;
  const base = { layer: layer.name, run: run.label, elevation: state.elevation };
  const path = `/api/catchments/${encodeURIComponent(set)}/${encodeURIComponent(id)}`;
  let answer;
  let members = null;
  try {
    [answer, members] = await Promise.all([
      getJson(`${path}?${query({ ...base, member: state.member })}`),
      state.members.length ? getJson(`${path}?${query({ ...base, member: 'all' })}`)
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
  $('hydrograph-title').textContent = `${layer.title} — run ${run.label}, mean over `
    + `${catchment.id} (${catchment.cells} cells)`
    + (members ? `, member ${state.member || '(default)'} and the members' range` : '');
  state.chart = {
    main: toSeries(answer.series[0]),
    plume: [],
    band: members ? memberBand(members) : null,
    units: answer.units,
  };
  markHydrographTime();
  panel.dataset.state = 'ready';
}

async function selectCatchments(set) {
  catchmentSource.clear();
  state.catchment = null;
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
    if (name === 'style') updateLegend();
    if (state.point) showHydrograph(state.point);
  });
}
$('opacity').addEventListener('input', () => forecastLayer.setOpacity($('opacity').value / 100));
$('basemap').addEventListener('change', () => baseMap.setVisible($('basemap').checked));
$('hydrograph-close').addEventListener('click', closeHydrograph);
$('catchments').addEventListener('change', () => selectCatchments($('catchments').value));

async function start() {
  document.body.dataset.tiles = 'idle';
  loadBaseMap().catch((error) => showError(error, 'Base map'));
  loadCatchmentSets().catch((error) => showError(error, 'Catchment sets'));
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
  await selectLayer(state.capabilities.layers[0].name);
}

// For scripts and tests driving the page (and curious users in the console).
window.fewsmapViewer = { map, state, selectLayer, selectRun, setTimeIndex, showHydrograph,
                         selectCatchments, showCatchment };
start();
