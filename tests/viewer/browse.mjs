// Drive fewsmap's viewer in Debian's headless Chromium (playwright-core) like a forecaster would,
// and report what happened as JSON on stdout; tests/viewer/test_viewer.py judges it.
//
//   node browse.mjs BASE_URL ARTIFACTS_DIR
//
// Screenshots go to ARTIFACTS_DIR (a person can look at them). Map screenshots named
// `data-*.png` are taken without the base map, controls or page background, so their
// non-transparent pixels are the forecast tiles alone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [base, artifacts] = process.argv.slice(2);
const CHROMIUM = process.env.FEWSMAP_CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TIMEOUT_MS = 30000;
// A layer with pressure levels and two runs sharing valid times; test_viewer.py adds its store.
const LEVELS_LAYER = 'synthetic-levels.t';

// `offServer` and `networkFailures` hold every request that went elsewhere than the fewsmap
// server or got no answer at all (no CDN, nothing missing at run time).
const report = { console: [], pageErrors: [], failedRequests: [], offServer: [],
                 networkFailures: [], requestCount: 0, steps: {} };
let phase = 'load';
const server = new URL(base).origin;

const profile = mkdtempSync(join(tmpdir(), 'fewsmap-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM, headless: true, args: FLAGS,
  viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1, timeout: TIMEOUT_MS,
});
const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(TIMEOUT_MS);
page.on('console', (message) => {
  if (message.type() === 'error' || message.type() === 'warning') {
    report.console.push({ phase, type: message.type(), text: message.text() });
  }
});
page.on('pageerror', (error) => report.pageErrors.push({ phase, text: String(error) }));
page.on('response', (response) => {
  if (response.status() >= 400) {
    report.failedRequests.push({ phase, url: response.url(), status: response.status() });
  }
});
const tileUrls = [];
const apiUrls = []; // time series and catchment requests, as sent
page.on('request', (request) => {
  const url = new URL(request.url());
  report.requestCount += 1;
  // A blob: URL's origin is the page that made it (the tiles the page fetched itself).
  if (url.origin !== server) report.offServer.push({ phase, url: request.url() });
  if (url.origin === server && url.pathname.startsWith('/tiles/')
      && !url.pathname.endsWith('tilejson.json')) tileUrls.push(request.url());
  if (url.origin === server && url.pathname.startsWith('/api/')) apiUrls.push(request.url());
});

// The time-series and catchment requests sent since `mark`: path and query.
function apiQueries(mark) {
  return apiUrls.slice(mark).map((url) => {
    const parsed = new URL(url);
    return { path: parsed.pathname, ...Object.fromEntries(parsed.searchParams) };
  });
}
page.on('requestfailed', (request) => {
  report.networkFailures.push({ phase, url: request.url(), error: request.failure().errorText });
});

// The tiles requested since `mark`, as {layer, run, time, member, ...} (one per distinct query).
function tileQueries(mark) {
  const queries = new Map();
  for (const url of tileUrls.slice(mark)) {
    const parsed = new URL(url);
    const layer = decodeURIComponent(parsed.pathname.split('/')[2]);
    queries.set(parsed.search, { layer, ...Object.fromEntries(parsed.searchParams) });
  }
  return [...queries.values()];
}

function tileResponse(test) {
  return page.waitForResponse((response) => {
    const url = new URL(response.url());
    return url.pathname.startsWith('/tiles/') && test(url.searchParams, url.pathname);
  });
}

// Wait until no tile is loading and the map has drawn what it loaded.
async function settled() {
  await page.waitForFunction(() => document.body.dataset.tiles === 'idle');
  await page.evaluate((timeout) => new Promise((resolve, reject) => {
    const { map } = window.fewsmapViewer;
    const timer = setTimeout(() => reject(new Error('the map did not finish rendering')), timeout);
    map.once('rendercomplete', () => {
      clearTimeout(timer);
      resolve(true);
    });
    map.render();
  }), TIMEOUT_MS);
}

// What the page says it shows, and what its controls hold.
function pageState() {
  return page.evaluate(() => {
    const { state, map } = window.fewsmapViewer;
    const shown = document.getElementById('shown');
    return {
      layer: state.layer && state.layer.name,
      run: state.run && state.run.label,
      runs: state.runs.map((r) => r.label),
      times: state.times, // the valid times offered
      runTimes: state.run ? state.run.times : [],
      time: state.run ? state.times[state.timeIndex] ?? null : null,
      member: window.fewsmapViewer.memberParameter(),
      hash: window.location.hash,
      statisticVisible: !document.getElementById('statistic-field').hidden,
      statistics: [...document.querySelectorAll('#statistic option')].map((o) => o.value),
      thresholdVisible: !document.getElementById('threshold-field').hidden,
      thresholds: [...document.querySelectorAll('#threshold-pick option')].map((o) => o.value),
      thresholdUnits: document.getElementById('threshold-units').textContent,
      thresholdProblem: document.getElementById('threshold-problem').textContent,
      changeVisible: !document.getElementById('change-field').hidden,
      changeChecked: document.getElementById('change').checked,
      changeDisabled: document.getElementById('change').disabled,
      baselines: [...document.querySelectorAll('#baseline option')].map((o) => o.value),
      baselineVisible: !document.getElementById('baseline-field').hidden,
      accumulateVisible: !document.getElementById('accumulate-field').hidden,
      styleVisible: !document.getElementById('style-field').hidden,
      shownText: shown.textContent,
      shownRun: shown.dataset.run || null,
      shownValidTime: shown.dataset.validTime || null,
      shownRefused: shown.dataset.refused === 'true',
      forecastVisible: window.fewsmapViewer.map.getLayers().item(1).getVisible(),
      extent3857: map.getView().calculateExtent(map.getSize()),
      mapSize: map.getSize(),
      elevation: state.elevation,
      elevationVisible: !document.getElementById('elevation-field').hidden,
      elevations: [...document.querySelectorAll('#elevation option')].map((o) => o.value),
      memberVisible: !document.getElementById('member-field').hidden,
      legendEntries: document.querySelectorAll('#legend li').length,
      legend: {
        layer: document.getElementById('legend').dataset.layer || null,
        query: document.getElementById('legend').dataset.query || null,
        unit: document.querySelector('#legend .unit')?.textContent ?? null,
        entries: [...document.querySelectorAll('#legend li')].map((item) => ({
          label: item.textContent.trim(),
          color: item.querySelector('.swatch').style.backgroundColor })),
      },
      error: document.getElementById('error').hidden ? null
        : document.getElementById('error-text').textContent,
    };
  });
}

// A screenshot of the map's layers alone (no controls or page background): the forecast tiles
// only, unless the base map is asked for.
async function mapShot(name, { baseMap = false } = {}) {
  if (!baseMap) await page.locator('#basemap').uncheck();
  await page.addStyleTag({
    content: '.ol-control, .ol-attribution, .ol-scale-line { display: none !important; }' });
  await settled();
  await page.locator('#map').screenshot({ path: join(artifacts, name), omitBackground: true });
  await page.evaluate(() => document.querySelectorAll('style').forEach((s) => s.remove()));
  await page.locator('#basemap').check();
}

const dataShot = (name) => mapShot(name);

// Wait until the legend shown is that of the selection (it loads apart from the tiles).
function legendShown() {
  return page.waitForFunction(() => document.getElementById('legend').dataset.query
    === window.fewsmapViewer.legendQuery());
}

// Choose `value` in the select `selector`; wait for the first tile asking `parameter=value`.
// Returns where its requests start in tileUrls and that tile's answer.
async function choose(selector, parameter, value) {
  const mark = tileUrls.length;
  const answered = tileResponse((query) => query.get(parameter) === value);
  await page.locator(selector).selectOption(value);
  return { mark, answer: await answered };
}

// Pick a layer in the tree; wait until the page states the run and time its tiles show
// (tiles seen before may come from the map's cache, without a request).
async function selectLayer(name) {
  const mark = tileUrls.length;
  await page.locator(`#layers input[value="${name}"]`).check();
  await page.waitForFunction((layer) => {
    const { state } = window.fewsmapViewer;
    return state.layer.name === layer && state.run && document.getElementById('shown').dataset.run;
  }, name);
  await settled();
  return mark;
}

async function clickMapCentre() {
  if (await page.locator('#hydrograph-close').isVisible()) {
    await page.locator('#hydrograph-close').click();
  }
  const box = await page.locator('#map').boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  return chartShown();
}

// Click the map at a longitude and latitude (once the map has its size without the chart).
async function clickAt(lon, lat) {
  if (await page.locator('#hydrograph-close').isVisible()) {
    await page.locator('#hydrograph-close').click();
    await page.waitForFunction(() => document.getElementById('hydrograph').hidden);
  }
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => done(null))));
  const [px, py] = await page.evaluate(([x, y]) => {
    window.fewsmapViewer.map.updateSize();
    return window.fewsmapViewer.map.getPixelFromCoordinate(ol.proj.fromLonLat([x, y]));
  }, [lon, lat]);
  const mapBox = await page.locator('#map').boundingBox();
  await page.mouse.click(mapBox.x + px, mapBox.y + py);
  return chartShown();
}

// The hydrograph once drawn (or refused): what it shows.
async function chartShown() {
  await page.waitForFunction(
    () => ['ready', 'error'].includes(document.getElementById('hydrograph').dataset.state));
  return page.evaluate(() => {
    const panel = document.getElementById('hydrograph');
    const svg = panel.querySelector('svg.hydrograph');
    const number = (node, name) => Number(node.getAttribute(name));
    // The value axis as drawn: each horizontal grid line's y and the value labelled on it.
    const valueTicks = [...panel.querySelectorAll('.grid line')]
      .filter((line) => line.getAttribute('y1') === line.getAttribute('y2'))
      .map((line) => [number(line, 'y1'), Number(line.nextElementSibling.textContent)]);
    const band = panel.querySelector('polygon.band');
    return {
      state: panel.dataset.state,
      lon: panel.dataset.lon, lat: panel.dataset.lat, run: panel.dataset.run,
      catchment: panel.dataset.catchment || null,
      title: document.getElementById('hydrograph-title').textContent,
      units: panel.querySelector('svg .value-units')?.textContent ?? null,
      values: [...panel.querySelectorAll('.main-series circle.point title')]
        .map((t) => Number(t.textContent.split(': ')[1].split(' ')[0])),
      zeroLines: panel.querySelectorAll('line.zero').length,
      points: panel.querySelectorAll('.main-series circle.point').length,
      dataPoints: svg ? Number(svg.dataset.points) : null,
      plumeRuns: [...panel.querySelectorAll('.plume-series')].map((g) => g.dataset.run),
      band: panel.querySelectorAll('polygon.band').length,
      bandPoints: band ? band.getAttribute('points').split(' ').map((p) => p.split(',').map(Number))
        : [],
      pointXs: [...panel.querySelectorAll('.main-series circle.point')].map((c) => number(c, 'cx')),
      valueTicks,
    };
  });
}

try {
  // 1. The page loads: layer tree, first layer drawn, no console errors.
  const loaded = tileResponse(() => true);
  await page.goto(`${base}/`);
  await page.locator('#layers input[name="layer"]').first().waitFor();
  await loaded;
  await settled();
  report.steps.load = {
    ...(await pageState()),
    layers: await page.locator('#layers input[name="layer"]').evaluateAll(
      (inputs) => inputs.map((i) => i.value)),
    groups: await page.locator('#layers summary').allTextContents(),
    title: await page.title(),
  };
  await page.screenshot({ path: join(artifacts, '01-loaded.png') });

  // 2. Tiles of a layer with many time steps.
  phase = 'tiles';
  let mark = await selectLayer('naefs-mean.QTF');
  report.steps.tiles = { ...(await pageState()), requests: tileQueries(mark) };
  await page.screenshot({ path: join(artifacts, '02-naefs-qtf.png') });
  await dataShot('data-naefs-qtf-first.png');

  // 3. The time slider, then the step button.
  phase = 'time';
  const times = report.steps.tiles.times;
  mark = tileUrls.length;
  let answered = tileResponse((query) => query.get('time') === times[8]);
  await page.locator('#time').fill('8');
  await answered;
  await settled();
  report.steps.slider = { ...(await pageState()), requests: tileQueries(mark) };
  await dataShot('data-naefs-qtf-slider.png');
  mark = tileUrls.length;
  answered = tileResponse((query) => query.get('time') === times[9]);
  await page.locator('#step-forward').click();
  await answered;
  await settled();
  report.steps.step = { ...(await pageState()), requests: tileQueries(mark) };
  // Play advances one step at a time; pause stops it.
  mark = tileUrls.length;
  await page.locator('#play').click();
  // Pause from inside the page as soon as step 11 shows: a poll timer due before the next
  // play tick runs first, where a click sent from here could land after it on a busy machine.
  await page.evaluate(() => new Promise((resolve) => {
    const poll = () => {
      if (window.fewsmapViewer.state.timeIndex < 11) { setTimeout(poll, 5); return; }
      document.getElementById('play').click();
      resolve();
    };
    poll();
  }));
  await settled();
  const paused = await pageState();
  await page.waitForTimeout(1500);
  report.steps.play = { requests: tileQueries(mark), paused: paused.time,
                        later: (await pageState()).time };

  // 4. Click the map: the hydrograph of the selected run at that point.
  phase = 'hydrograph';
  report.steps.hydrograph = await clickMapCentre();
  await page.screenshot({ path: join(artifacts, '03-naefs-hydrograph.png'), fullPage: true });

  // 5. Another run: marfc-fmat has four.
  phase = 'runs';
  mark = await selectLayer('marfc-fmat.t');
  report.steps.latestRun = { ...(await pageState()), requests: tileQueries(mark) };
  await dataShot('data-marfc-latest-run.png');
  const older = report.steps.latestRun.runs[2];
  mark = tileUrls.length;
  answered = tileResponse((query) => query.get('run') === older);
  await page.locator('#run').selectOption(older);
  await answered;
  await settled();
  report.steps.olderRun = { ...(await pageState()), requests: tileQueries(mark) };
  await dataShot('data-marfc-older-run.png');
  report.steps.runHydrograph = await clickMapCentre();
  await page.screenshot({ path: join(artifacts, '04-marfc-older-run.png'), fullPage: true });

  // 6. An ensemble: the member selector, and the members' band in the hydrograph.
  phase = 'ensemble';
  mark = await selectLayer('ecmwf-ens-gust.fg10_6');
  answered = tileResponse((query) => query.get('member') === '7');
  await page.locator('#member').selectOption('7');
  await answered;
  await settled();
  report.steps.ensemble = { ...(await pageState()), requests: tileQueries(mark),
                            hydrograph: await clickMapCentre() };
  await page.screenshot({ path: join(artifacts, '05-ensemble.png'), fullPage: true });

  // 6b. Catchments: the demo set's outlines; a click on one draws its mean and members' band.
  phase = 'catchment';
  await page.locator('#catchments').selectOption('demo-basins');
  await page.waitForFunction(() => document.getElementById('catchments').dataset.loaded);
  await page.locator('#hydrograph-close').click();
  await page.waitForFunction(() => document.getElementById('hydrograph').hidden);
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => done(null))));
  const [px, py] = await page.evaluate(() => { // inside B04, once the map has its new size
    window.fewsmapViewer.map.updateSize();
    return window.fewsmapViewer.map.getPixelFromCoordinate(ol.proj.fromLonLat([9.5, 50.5]));
  });
  const mapBox = await page.locator('#map').boundingBox();
  await page.mouse.click(mapBox.x + px, mapBox.y + py);
  await page.waitForFunction(
    () => ['ready', 'error'].includes(document.getElementById('hydrograph').dataset.state));
  report.steps.catchment = await page.evaluate(() => {
    const panel = document.getElementById('hydrograph');
    return {
      state: panel.dataset.state, catchment: panel.dataset.catchment, run: panel.dataset.run,
      title: document.getElementById('hydrograph-title').textContent,
      points: panel.querySelectorAll('.main-series circle.point').length,
      values: [...panel.querySelectorAll('.main-series circle.point title')]
        .map((t) => Number(t.textContent.split(': ')[1].split(' ')[0])),
      band: panel.querySelectorAll('polygon.band').length,
      outlines: window.fewsmapViewer.map.getLayers().getArray()
        .find((l) => l.getClassName() === 'catchment-layer').getSource().getFeatures().length,
    };
  });
  await page.screenshot({ path: join(artifacts, '05b-catchment.png'), fullPage: true });
  await page.locator('#hydrograph-close').click();
  await page.locator('#catchments').selectOption(''); // later clicks mean points again

  // 7. Pressure levels: another elevation, then the other run at the same valid time.
  phase = 'levels';
  mark = await selectLayer(LEVELS_LAYER);
  await legendShown();
  report.steps.levels = { ...(await pageState()), requests: tileQueries(mark) };
  await dataShot('data-levels-default.png');
  let chosen = await choose('#elevation', 'elevation', '500');
  await settled();
  report.steps.elevation = { ...(await pageState()), requests: tileQueries(chosen.mark) };
  await dataShot('data-levels-500hpa.png');
  chosen = await choose('#run', 'run', report.steps.levels.runs[1]);
  await settled();
  await legendShown();
  report.steps.levelsOlderRun = { ...(await pageState()), requests: tileQueries(chosen.mark) };
  await dataShot('data-levels-older-run.png');
  await page.screenshot({ path: join(artifacts, '06-levels-older-run-500hpa.png') });

  // 8. Opacity: the forecast fades; at 0 only the base map is left (it needs no network).
  phase = 'opacity';
  await page.locator('#opacity').fill('30');
  await dataShot('data-levels-opacity-30.png');
  await page.locator('#opacity').fill('0');
  await mapShot('07-base-map-at-opacity-0.png', { baseMap: true });
  await page.locator('#opacity').fill('80');

  // 9. A refused map tile. The page offers only what capabilities list, so act as a page whose
  //    capabilities went stale: a level the server does not have. Its message must be shown.
  phase = 'tileRefused';
  await page.locator('#elevation').evaluate((select) => select.add(new Option('925 hPa', '925')));
  chosen = await choose('#elevation', 'elevation', '925');
  await page.locator('#error').waitFor(); // (a map with failed tiles never completes rendering)
  report.steps.tileRefused = { ...(await pageState()), refusedTile: chosen.answer.url(),
                               status: chosen.answer.status() };
  await page.screenshot({ path: join(artifacts, '08-tile-error-shown.png') });
  await page.locator('#elevation').selectOption('500'); // its tiles may come from the cache
  await settled();
  await page.locator('#error-close').click();

  // 10. A refused request (a point outside the grid): the server's message is shown.
  phase = 'refused';
  await page.evaluate(() => window.fewsmapViewer.map.getView().setCenter(
    window.ol.proj.fromLonLat([-150, -40])));
  await settled();
  report.steps.refused = { hydrograph: await clickMapCentre(), ...(await pageState()) };
  await page.screenshot({ path: join(artifacts, '09-error-shown.png') });
  await page.locator('#error-close').click();

  // 11. An ensemble statistic: the members' mean on the map, its legend and hydrograph.
  phase = 'statistic';
  await selectLayer('ecmwf-ens-gust.fg10_6');
  const offered = await pageState();
  chosen = await choose('#statistic', 'member', 'mean');
  await settled();
  await legendShown();
  let apiMark = apiUrls.length;
  report.steps.statistic = { ...(await pageState()), requests: tileQueries(chosen.mark),
                             offered };
  await dataShot('data-ensemble-mean.png');
  report.steps.statistic.hydrograph = await clickMapCentre();
  report.steps.statistic.api = apiQueries(apiMark);
  await page.screenshot({ path: join(artifacts, '10-ensemble-mean.png'), fullPage: true });
  await page.locator('#catchments').selectOption('demo-basins'); // a catchment's mean too
  await page.waitForFunction(() => document.getElementById('catchments').dataset.loaded);
  apiMark = apiUrls.length;
  report.steps.statisticCatchment = await clickAt(9.5, 50.5);
  report.steps.statisticCatchment.api = apiQueries(apiMark);
  await page.screenshot({ path: join(artifacts, '10b-catchment-mean.png'), fullPage: true });
  await page.locator('#hydrograph-close').click();
  await page.locator('#catchments').selectOption('');

  // 12. Exceedance: the first configured threshold at once; another typed in, refused by
  //     the page while it is not a number.
  phase = 'threshold';
  mark = tileUrls.length;
  answered = tileResponse((query) => query.get('member') === 'above:15');
  await page.locator('#statistic').selectOption('threshold');
  await answered;
  await settled();
  await legendShown();
  report.steps.threshold = { ...(await pageState()), requests: tileQueries(mark) };
  await dataShot('data-ensemble-above-15.png');
  await page.locator('#threshold-pick').selectOption('other');
  mark = tileUrls.length;
  await page.locator('#threshold-value').fill('12,5');
  await page.locator('#threshold-value').press('Enter');
  await page.waitForFunction(() => document.getElementById('threshold-problem').textContent);
  report.steps.thresholdInvalid = { ...(await pageState()), requests: tileQueries(mark) };
  await page.screenshot({ path: join(artifacts, '11-threshold-invalid.png') });
  answered = tileResponse((query) => query.get('member') === 'below:12.5');
  await page.locator('#threshold-direction').selectOption('below');
  await page.locator('#threshold-value').fill('12.5');
  await page.locator('#threshold-apply').click();
  await answered;
  await settled();
  await legendShown();
  apiMark = apiUrls.length;
  report.steps.thresholdOther = { ...(await pageState()), requests: tileQueries(mark),
                                  hydrograph: await clickMapCentre() };
  report.steps.thresholdOther.api = apiQueries(apiMark);
  await page.screenshot({ path: join(artifacts, '12-ensemble-below-12.5.png'), fullPage: true });

  // 13. The URL's hash: a new page opened at it shows the same view.
  phase = 'hash';
  const sharedHash = report.steps.thresholdOther.hash;
  await page.goto('about:blank');
  mark = tileUrls.length;
  await page.goto(`${base}/${sharedHash}`);
  await page.waitForFunction(() => {
    const { state } = window.fewsmapViewer || {};
    return state && state.run && document.getElementById('shown').dataset.run;
  });
  await settled();
  await legendShown();
  report.steps.hash = { ...(await pageState()), requests: tileQueries(mark),
                        thresholdValue: await page.locator('#threshold-value').inputValue(),
                        direction: await page.locator('#threshold-direction').inputValue() };

  // 14. Units: the chart of a layer stored in K states the legend's unit.
  phase = 'units';
  await selectLayer(LEVELS_LAYER);
  await legendShown();
  report.steps.units = { ...(await pageState()), hydrograph: await clickMapCentre() };

  // 15. The change since the previous run: diverging map and legend, the change series.
  phase = 'change';
  await page.locator('#hydrograph-close').click();
  mark = tileUrls.length;
  answered = tileResponse((query) => query.get('baseline') === 'previous');
  await page.locator('#change').check();
  await answered;
  await settled();
  await legendShown();
  apiMark = apiUrls.length;
  report.steps.change = { ...(await pageState()), requests: tileQueries(mark) };
  await dataShot('data-levels-change.png');
  report.steps.change.hydrograph = await clickMapCentre();
  report.steps.change.api = apiQueries(apiMark);
  await page.screenshot({ path: join(artifacts, '13-levels-change.png'), fullPage: true });
  // The oldest run has nothing earlier: the change is off and cannot be chosen.
  const oldest = report.steps.change.runs.at(-1);
  answered = tileResponse((query) => query.get('run') === oldest);
  await page.locator('#run').selectOption(oldest);
  await answered;
  await settled();
  report.steps.changeOldest = await pageState();
  // A catchment's chart under the change view: the catchment's change, as its API answers it.
  phase = 'changeCatchment';
  await page.locator('#run').selectOption(report.steps.change.runs[0]); // tiles seen before:
  await page.locator('#change').check(); // they may come from the map's cache
  await settled();
  await page.locator('#catchments').selectOption('demo-basins');
  await page.waitForFunction(() => document.getElementById('catchments').dataset.loaded);
  apiMark = apiUrls.length;
  report.steps.changeCatchment = { ...(await clickAt(9.5, 50.5)) };
  report.steps.changeCatchment.api = apiQueries(apiMark);
  await page.screenshot({ path: join(artifacts, '14-change-catchment.png'), fullPage: true });
  await page.locator('#hydrograph-close').click();
  await page.locator('#catchments').selectOption('');

  // 16. Sums over 24 h of a precipitation layer: the window's sums on map, legend and chart.
  phase = 'accumulate';
  await selectLayer('naefs-mean.QPF');
  const perStep = await pageState();
  mark = tileUrls.length;
  answered = tileResponse((query) => query.get('accumulate') === 'PT24H');
  await page.locator('#accumulate').selectOption('PT24H');
  await answered;
  await settled();
  await legendShown();
  apiMark = apiUrls.length;
  report.steps.accumulate = { ...(await pageState()), requests: tileQueries(mark), perStep };
  await dataShot('data-qpf-24h.png');
  report.steps.accumulate.hydrograph = await clickMapCentre();
  report.steps.accumulate.api = apiQueries(apiMark);
  await page.screenshot({ path: join(artifacts, '15-qpf-24h.png'), fullPage: true });

  // 17. A change between runs that share no valid time (MARFC's): the earlier runs are offered,
  //     and the page says there is nothing to compare instead of asking for refused tiles.
  phase = 'noSharedTime';
  await selectLayer('marfc-fmat.t');
  mark = tileUrls.length;
  await page.locator('#change').check();
  await page.waitForFunction(() => document.getElementById('shown').dataset.refused === 'true');
  report.steps.noSharedTime = await pageState();
  const earliest = report.steps.noSharedTime.runs.at(-1);
  await page.locator('#baseline').selectOption(earliest);
  await page.waitForFunction((run) => document.getElementById('shown').textContent
    .includes(`no valid time with run ${run}`), earliest);
  report.steps.pickedBaseline = { ...(await pageState()), requests: tileQueries(mark) };
  await page.screenshot({ path: join(artifacts, '16-no-shared-time.png') });
} catch (error) {
  report.failure = String(error.stack || error);
  await page.screenshot({ path: join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(report));
