/*
 * What the browser flows (panel_flow.cjs, packages_flow.cjs, conda_flow.cjs) share: playwright-core from the
 * labextension's devDependencies, the server and Chromium from the environment, a logger whose checks throw,
 * numbered screenshots, opening JupyterLab and the sidebar, the REST API, an env's export, a revision's restore, and a main() that runs one flow.
 *
 * Environment: LAYENV_UI_URL (server URL ending in /), LAYENV_UI_TOKEN, LAYENV_UI_ARTIFACTS (screenshots),
 * LAYENV_UI_TIMEOUT_MS (a page action's timeout), CHROMIUM (executable).
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

// playwright-core is a devDependency of the labextension (npm ci in labextension/).
const requireLab = createRequire(path.resolve(__dirname, '..', '..', 'labextension', 'package.json'));
const { chromium } = requireLab('playwright-core');

const URL_ = process.env.LAYENV_UI_URL;
const TOKEN = process.env.LAYENV_UI_TOKEN;
const ARTIFACTS = process.env.LAYENV_UI_ARTIFACTS || path.resolve(__dirname, '..', '..', 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = Number(process.env.LAYENV_UI_TIMEOUT_MS || 60000);

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage'
];

/** log, check (throws when a check fails) and screenshot (ARTIFACTS/<name>-NN-<stage>.png), tagged with name. */
function reporter(name) {
  const t0 = Date.now();
  let shot = 0;

  function log(...args) {
    const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
    console.log(`[${name} ${s}s]`, ...args);
  }

  function check(condition, message) {
    if (!condition) {
      throw new Error(`check failed: ${message}`);
    }
    log(`ok: ${message}`);
  }

  async function screenshot(page, stage) {
    shot += 1;
    const file = path.join(ARTIFACTS, `${name}-${String(shot).padStart(2, '0')}-${stage}.png`);
    await page.screenshot({ path: file });
    log(`screenshot ${file}`);
    return file;
  }

  return { log, check, screenshot };
}

/** JupyterLab with a clean workspace, once the layenv plugin is active and the layout restored. */
async function openLab(page) {
  await page.goto(`${URL_}lab?reset&token=${TOKEN}`);
  await page.waitForSelector('#jupyterlab-splash', { state: 'detached' });
  // window.jupyterapp exists because the server runs with LabApp.expose_app_in_browser.
  await page.waitForFunction(() => window.jupyterapp && window.jupyterapp.commands.hasCommand('layenv:create'));
  await page.evaluate(async () => {
    await window.jupyterapp.restored;
  });
}

/** The Environments sidebar, shown. */
async function openSidebar(page) {
  const tab = page.locator('.jp-SideBar.jp-mod-left li[data-id="jupyter-layenv-sidebar"]');
  await tab.waitFor();
  const panel = page.locator('#jupyter-layenv-sidebar');
  if (!(await panel.isVisible())) {
    await tab.click();
  }
  await panel.waitFor({ state: 'visible' });
  return panel;
}

/** A call of one of the server's REST APIs (`layenv/` or Jupyter's own `api/`), as the test's own client: its status
 * and JSON body ({} if none). */
async function rest(base, method, endpoint, body) {
  const response = await fetch(`${URL_}${base}${endpoint}`, {
    method,
    headers: { Authorization: `token ${TOKEN}` },
    body: body === undefined ? undefined : JSON.stringify(body)
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

/** A call of the server's layenv REST API. */
function api(method, endpoint, body) {
  return rest('layenv/', method, endpoint, body);
}

/** Create layer `name` on `base` through the REST API and wait for its job: the creation's POST answer. */
async function createLayer(name, base) {
  const created = await api('POST', 'environments', { name, base });
  for (let job = created.body; created.status === 202 && (job.state === 'queued' || job.state === 'running'); ) {
    await new Promise(resolve => setTimeout(resolve, 200));
    job = (await api('GET', `jobs/${created.body.id}`)).body;
    if (job.state === 'failed') {
      throw new Error(`create failed: ${job.error}`);
    }
  }
  return created;
}

/** The names of the packages env `id` has in its own layer (not its base's). */
async function layerPackages(id) {
  const { body } = await api('GET', `environments/${id}`);
  return body.packages.layer.map(p => p.name);
}

/**
 * Export `name` from its sidebar `row` as `format` (a button of the Export dialog, screenshot `stage` taken): the
 * download saved as ARTIFACTS/<prefix>-<its name>; its name and text.
 */
async function exportEnv(page, row, name, format, { screenshot, stage, prefix }) {
  await row.locator(':scope > .jp-LayenvEnv-row').getByRole('button', { name: `Export ${name}` }).click();
  const dialog = page.locator('.jp-Dialog');
  await dialog.waitFor();
  await screenshot(page, stage);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    dialog.getByRole('button', { name: format }).click()
  ]);
  const file = path.join(ARTIFACTS, `${prefix}-${download.suggestedFilename()}`);
  await download.saveAs(file);
  return { name: download.suggestedFilename(), text: fs.readFileSync(file, 'utf-8') };
}

/**
 * Restore revision `from` in a Packages `view`, confirmed in its dialog (screenshot `stage` taken), until its
 * History lists the revision `to` the restore records.
 */
async function restoreRevision(page, view, from, to, { screenshot, stage }) {
  await view.getByRole('button', { name: `Restore revision ${from}` }).click();
  const dialog = page.locator('.jp-Dialog');
  await dialog.waitFor();
  await screenshot(page, stage);
  await dialog.getByRole('button', { name: 'Restore' }).click();
  await view.locator(`[aria-label="History"] li[data-revision="${to}"]`).waitFor({ timeout: 120000 });
}

/**
 * Run flow(page) in a fresh Chromium and exit: 0 when every check held, 1 with the error otherwise (after a
 * FAILED screenshot and the browser console's layenv errors).
 */
function run(flow, { log, screenshot }) {
  async function main() {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
    const context = await browser.newContext({ viewport: { width: 1366, height: 860 }, acceptDownloads: true });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    const consoleErrors = [];
    page.on('console', msg => {
      if (msg.type() === 'error') {
        consoleErrors.push(msg.text());
      }
    });
    page.on('pageerror', err => consoleErrors.push(String(err)));
    try {
      await flow(page);
    } catch (error) {
      await screenshot(page, 'FAILED').catch(() => undefined);
      const layenvErrors = consoleErrors.filter(e => /layenv/i.test(e));
      if (layenvErrors.length) {
        console.error('browser console errors:\n' + layenvErrors.join('\n'));
      }
      throw error;
    } finally {
      await browser.close();
    }
  }

  main().then(
    () => {
      log('PASSED');
      process.exit(0);
    },
    error => {
      console.error(error && error.stack ? error.stack : error);
      process.exit(1);
    }
  );
}

module.exports = {
  URL_,
  TOKEN,
  ARTIFACTS,
  TIMEOUT,
  reporter,
  openLab,
  openSidebar,
  api,
  rest,
  createLayer,
  layerPackages,
  exportEnv,
  restoreRevision,
  run,
};
