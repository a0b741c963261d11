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

const report = { console: [], pageErrors: [], failedRequests: [], steps: {} };
let phase = 'load';

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
page.on('request', (request) => {
  if (new URL(request.url()).pathname.startsWith('/tiles/')) tileUrls.push(request.url());
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
  await page.evaluate(() => new Promise((resolve) => {
    const { map } = window.fewsmapViewer;
    map.once('rendercomplete', () => resolve(true));
    map.render();
  }));
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
      times: state.run ? state.run.times : [],
      time: state.run ? state.run.times[state.timeIndex] : null,
      shownText: shown.textContent,
      shownRun: shown.dataset.run || null,
      shownValidTime: shown.dataset.validTime || null,
      extent3857: map.getView().calculateExtent(map.getSize()),
      mapSize: map.getSize(),
      memberVisible: !document.getElementById('member-field').hidden,
      legendEntries: document.querySelectorAll('#legend li').length,
      error: document.getElementById('error').hidden ? null
        : document.getElementById('error-text').textContent,
    };
  });
}

// A screenshot of the forecast tiles alone: no base map, controls or background.
async function dataShot(name) {
  await page.locator('#basemap').uncheck();
  await page.addStyleTag({
    content: '.ol-control, .ol-attribution, .ol-scale-line { display: none !important; }' });
  await settled();
  await page.locator('#map').screenshot({ path: join(artifacts, name), omitBackground: true });
  await page.evaluate(() => document.querySelectorAll('style').forEach((s) => s.remove()));
  await page.locator('#basemap').check();
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
  await page.waitForFunction(
    () => ['ready', 'error'].includes(document.getElementById('hydrograph').dataset.state));
  return page.evaluate(() => {
    const panel = document.getElementById('hydrograph');
    const svg = panel.querySelector('svg.hydrograph');
    return {
      state: panel.dataset.state,
      lon: panel.dataset.lon, lat: panel.dataset.lat, run: panel.dataset.run,
      title: document.getElementById('hydrograph-title').textContent,
      points: panel.querySelectorAll('.main-series circle.point').length,
      dataPoints: svg ? Number(svg.dataset.points) : null,
      plumeRuns: [...panel.querySelectorAll('.plume-series')].map((g) => g.dataset.run),
      band: panel.querySelectorAll('polygon.band').length,
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
  await page.waitForFunction(() => window.fewsmapViewer.state.timeIndex >= 11);
  await page.locator('#play').click();
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

  // 7. A refused request (a point outside the grid): the server's message is shown.
  phase = 'refused';
  await page.evaluate(() => window.fewsmapViewer.map.getView().setCenter(
    window.ol.proj.fromLonLat([-150, -40])));
  await settled();
  report.steps.refused = { hydrograph: await clickMapCentre(), ...(await pageState()) };
  await page.screenshot({ path: join(artifacts, '06-error-shown.png') });
} catch (error) {
  report.failure = String(error.stack || error);
  await page.screenshot({ path: join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(report));
