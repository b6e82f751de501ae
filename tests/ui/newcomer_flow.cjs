#!/usr/bin/env node
/*
 * A new JupyterLab user's walk through the panel, in a real Chromium against a real JupyterLab (started by
 * tests/ui/test_panel_newcomer.py), by keyboard where a keyboard user would go: New environment (+) → the form,
 * its Name field focused → create a layer → its Packages: add a package (plan, Apply) → roll back to revision 1 →
 * export environment.yml → a kernel started from it meanwhile (the listing the panel shows does not know yet):
 * Delete, confirmed, is refused by the server (409) and the panel shows the server's words → the refreshed row's
 * Delete says why it is blocked (tooltip, greyed, Enter explains) → the kernel shut down, Delete works.
 * Along the way, the text of the sidebar and the Packages view is checked for contrast against its background
 * (WCAG AA) in the theme of the run.
 *
 * Environment: LAYENV_UI_URL, LAYENV_UI_TOKEN, LAYENV_UI_ARTIFACTS, LAYENV_UI_THEME (light|dark),
 * LAYENV_UI_ENV_NAME, LAYENV_UI_BASE_ID, LAYENV_UI_PACKAGE (only the wheelhouse has it), CHROMIUM.
 */
'use strict';

const { reporter, openLab, openSidebar, api, rest, exportEnv, restoreRevision, run } = require('./common.cjs');

const THEME = process.env.LAYENV_UI_THEME || 'light';
const ENV_NAME = process.env.LAYENV_UI_ENV_NAME || `newbie_${THEME}`;
const BASE_ID = process.env.LAYENV_UI_BASE_ID || 'conda-py311_ai';
const PACKAGE = process.env.LAYENV_UI_PACKAGE || 'iniconfig';
const ENV_ID = `${BASE_ID}.${ENV_NAME}`;

const { log, check, screenshot } = reporter(`newcomer-${THEME}`);

/** Focus `locator` and check that it has the focus (JupyterLab may take it away once, after a layout change). */
async function focus(page, locator) {
  for (let attempt = 0; attempt < 5; attempt++) {
    await locator.focus();
    if (await locator.evaluate(el => document.activeElement === el)) {
      return;
    }
    await page.waitForTimeout(300);
  }
  throw new Error('could not focus the element');
}

/**
 * Text under `scope` whose contrast with the background behind it is under WCAG AA (4.5:1; 3:1 for large text),
 * ignoring disabled controls (WCAG exempts inactive parts).
 */
async function lowContrast(scope) {
  return scope.evaluate(root => {
    // rgb()/rgba(), or color(srgb r g b / a) (what color-mix() computes to), channels 0..1 there
    const rgba = s => {
      const m = (s.replace(/^color\(srgb/, '').match(/[\d.]+(e-?\d+)?/g) || ['0', '0', '0', '0']).map(Number);
      const scale = s.startsWith('color(srgb') ? 255 : 1;
      return [m[0] * scale, m[1] * scale, m[2] * scale, m.length > 3 ? m[3] : 1];
    };
    const lum = ([r, g, b]) => {
      const c = [r, g, b].map(v => {
        v /= 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    };
    const blend = (top, bottom) => {
      const a = top[3];
      return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]);
    };
    const background = el => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const bg = rgba(getComputedStyle(e).backgroundColor);
        if (bg[3] > 0) {
          layers.push(bg);
          if (bg[3] >= 1) {
            break;
          }
        }
      }
      let color = [255, 255, 255, 1];
      for (const layer of layers.reverse()) {
        color = blend(layer, color);
      }
      return color;
    };
    const found = [];
    for (const el of root.querySelectorAll('*')) {
      const own = [...el.childNodes].filter(n => n.nodeType === 3 && n.data.replace(/[\u200e\s]/g, '')).map(n => n.data).join('');
      if (!own || !el.getClientRects().length || el.closest('[disabled], [aria-disabled="true"], option')) {
        continue;
      }
      const style = getComputedStyle(el);
      if (style.visibility === 'hidden' || Number(style.opacity) === 0) {
        continue;
      }
      let opacity = 1;
      for (let e = el; e; e = e.parentElement) {
        opacity *= Number(getComputedStyle(e).opacity);
      }
      const bg = background(el);
      const fg = blend([...rgba(style.color).slice(0, 3), rgba(style.color)[3] * opacity], bg);
      const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) {
        found.push(`"${own.trim().slice(0, 40)}" (${el.className || el.tagName}): ${ratio.toFixed(2)}:1`);
      }
    }
    return found;
  });
}

async function checkContrast(scope, where) {
  const low = await lowContrast(scope);
  log(`${where}: text under AA contrast: ${JSON.stringify(low)}`);
  check(low.length === 0, `${where}: every text has AA contrast in the ${THEME} theme (${low.length} below)`);
}

async function flow(page) {
  await openLab(page);
  await page.evaluate(async theme => {
    await window.jupyterapp.commands.execute('apputils:change-theme', { theme });
  }, THEME === 'dark' ? 'JupyterLab Dark' : 'JupyterLab Light');
  await page.waitForFunction(dark => document.body.getAttribute('data-jp-theme-light') === String(!dark), THEME === 'dark');
  await page.waitForTimeout(500);
  const sidebar = await openSidebar(page);
  await sidebar.locator(`li.jp-LayenvEnv[data-env-id="${BASE_ID}"]`).waitFor();
  await screenshot(page, 'sidebar');
  await checkContrast(sidebar, 'the sidebar');

  // -- create, from the sidebar's +, by keyboard
  await focus(page, sidebar.getByRole('button', { name: 'New environment' }));
  await page.keyboard.press('Enter');
  const form = page.locator('form.jp-LayenvForm').last();
  await form.waitFor();
  const name = form.getByLabel('Name', { exact: true });
  await page.waitForFunction(el => document.activeElement === el, await name.elementHandle());
  check(true, 'the form opens with its Name field focused');
  await page.keyboard.type(ENV_NAME);
  await form.getByLabel('Base', { exact: true }).selectOption(BASE_ID);
  await screenshot(page, 'form');
  await checkContrast(form, 'the form');
  await focus(page, name);
  await page.keyboard.press('Enter');
  const progress = page.locator('.jp-LayenvProgressView', { hasText: ENV_NAME }).last();
  // while queued, nothing is measured: an indeterminate bar, not "0 %"
  const bar = progress.getByRole('progressbar');
  const first = await bar.evaluate(el => ({ now: el.getAttribute('aria-valuenow'), cls: el.className, text: el.parentElement.innerText }));
  log(`the progress bar as the job starts: ${JSON.stringify(first)}`);
  if (/\bqueued\b/.test(first.text)) {
    check(first.now === null && /jp-mod-indeterminate/.test(first.cls), 'a queued job shows an indeterminate bar, no value');
  }
  await progress.locator('.jp-LayenvProgress-pct', { hasText: '100 %' }).waitFor({ timeout: 120000 });
  const badge = await progress.locator('.jp-LayenvProgress-status .jp-LayenvBadge').innerText();
  check(badge === 'succeeded', `100 % shows only once the job succeeded (its badge: ${badge})`);
  const open = progress.getByRole('button', { name: 'Open a notebook with it' });
  await open.waitFor();
  await screenshot(page, 'created');
  await checkContrast(progress, 'the progress view');

  // -- its Packages: add a package (the plan first), then roll back to revision 1
  await sidebar.getByRole('button', { name: 'Refresh environments' }).click();
  const row = sidebar.locator(`li.jp-LayenvEnv[data-env-id="${ENV_ID}"]`);
  await row.waitFor();
  await row.scrollIntoViewIfNeeded();
  await row.getByRole('button', { name: `Packages of ${ENV_NAME}` }).click();
  const view = page.locator('.jp-LayenvPackages').last();
  await view.locator('[aria-label="History"] li[data-revision="1"]').waitFor();
  const add = view.getByLabel('Packages to add');
  await focus(page, add);
  await page.keyboard.type(PACKAGE);
  await page.keyboard.press('Enter');
  const plan = view.locator('.jp-LayenvPlan');
  await plan.waitFor();
  await screenshot(page, 'plan');
  await checkContrast(view, 'the Packages view with a plan');
  await plan.getByRole('button', { name: 'Apply' }).click();
  await view.locator('[aria-label="History"] li[data-revision="2"]').waitFor({ timeout: 120000 });
  await view.locator(`[aria-label="Layer packages"] li[data-package="${PACKAGE}"]`).waitFor();
  await restoreRevision(page, view, 1, 3, { screenshot, stage: 'rollback-confirm' });
  await view.locator(`[aria-label="Layer packages"] li[data-package="${PACKAGE}"]`).waitFor({ state: 'detached' });
  check(true, `rolled back to revision 1: ${PACKAGE} is gone again`);
  // the layer lists pip, which its revisions do not count: it says why
  const pip = view.locator('[aria-label="Layer packages"] li[data-package="pip"]');
  check(/installer tooling/.test(await pip.innerText()), `the layer's pip is marked as installer tooling: "${await pip.innerText()}"`);
  const history = await view.locator('[aria-label="History"] li').allInnerTexts();
  log(`history: ${JSON.stringify(history)}`);
  check(/^#3 \d{4}-\d\d-\d\d \d\d:\d\d UTC \S+: restore of revision 1\b/.test(history[0]), 'a revision\'s time reads to the minute');
  check(/current/.test(history[0]) && !/current/.test(history.slice(1).join()), 'the newest revision is marked current');
  const jobLines = await sidebar.locator('.jp-LayenvJob', { hasText: ENV_NAME }).locator('.jp-LayenvJob-step').allInnerTexts();
  log(`the sidebar's jobs of ${ENV_NAME}: ${JSON.stringify(jobLines)}`);
  for (const kind of ['create', 'package change', 'restore']) {
    check(jobLines.some(line => line.startsWith(`${kind} ·`)), `the job list tells the ${kind} of ${ENV_NAME} apart`);
  }
  await screenshot(page, 'rolled-back');
  await checkContrast(view, 'the Packages view after a rollback');

  // -- export environment.yml
  await row.scrollIntoViewIfNeeded();
  const exported = await exportEnv(page, row, ENV_NAME, 'environment.yml', { screenshot, stage: 'export', prefix: `newcomer-${THEME}` });
  const yml = exported.text;
  log(`exported ${exported.name}:\n${yml}`);
  check(/^name: /m.test(yml) && /python/.test(yml), 'the environment.yml names the env and its Python');
  check(!yml.includes(PACKAGE), `and, rolled back, not ${PACKAGE}`);

  // -- a kernel started in this page, then shut down: the sidebar lists the environments again each time
  const kernelName = (await api('GET', 'environments')).body.environments.find(e => e.id === ENV_ID).kernels[0].name;
  let listings = 0;
  page.on('request', request => {
    if (/\/layenv\/environments(\?|$)/.test(request.url())) {
      listings += 1;
    }
  });
  const listedAgain = async what => {
    const before = listings;
    for (let waited = 0; listings === before && waited < 5000; waited += 100) {
      await page.waitForTimeout(100);
    }
    check(listings > before, `the sidebar lists the environments again when a kernel ${what}`);
  };
  const scratch = await page.evaluate(async name => {
    const manager = window.jupyterapp.serviceManager.sessions;
    const started = await manager.startNew({ path: 'scratch.ipynb', name: 'scratch.ipynb', type: 'notebook', kernel: { name } });
    return started.id;
  }, kernelName);
  await listedAgain('starts');
  await page.evaluate(async id => window.jupyterapp.serviceManager.sessions.shutdown(id), scratch);
  await listedAgain('shuts down');

  // -- a kernel started from it elsewhere (a notebook in another tab): this page does not know yet (its kernel
  // list is held as it was); Delete, confirmed, is refused (409), and the panel shows the server's words
  const kernelLists = url => /\/api\/(kernels|sessions)$/.test(url.pathname);
  await page.route(kernelLists, route => (route.request().method() === 'GET' ? route.fulfill({ json: [] }) : route.continue()));
  const session = await rest('api/', 'POST', 'sessions', {
    path: 'analysis.ipynb',
    name: 'analysis.ipynb',
    type: 'notebook',
    kernel: { name: kernelName }
  });
  check(session.status === 201, `a notebook session runs a kernel from ${ENV_NAME} (${session.status})`);
  try {
    const del = row.locator(':scope > .jp-LayenvEnv-row').getByRole('button', { name: `Delete ${ENV_NAME}` });
    check((await del.getAttribute('data-blocked')) === null, 'the panel, not refreshed, still offers Delete');
    await del.click();
    const confirm = page.locator('.jp-Dialog');
    await confirm.waitFor();
    await confirm.getByRole('button', { name: `Delete ${ENV_NAME}` }).click();
    const refused = page.locator('.jp-Dialog', { hasText: 'running' });
    await refused.waitFor();
    const said = await refused.innerText();
    log(`the refusal the panel shows: ${JSON.stringify(said)}`);
    check(/analysis\.ipynb/.test(said) && /shut it down first/.test(said), 'the panel shows the server\'s 409 message');
    check(!/\b409\b|Conflict|Error:/.test(said), 'in the server\'s words, not a status code');
    await screenshot(page, 'delete-refused');
    await checkContrast(refused, 'the refusal dialog');
    await refused.getByRole('button', { name: /ok|dismiss|close/i }).first().click();
    await refused.waitFor({ state: 'detached' });
    await page.unroute(kernelLists);
    check(await row.isVisible(), `${ENV_NAME} is still listed`);
    // the panel refreshed: where the listing says why Delete would be refused, the button says so before a click
    const listed = (await api('GET', 'environments')).body.environments.find(e => e.id === ENV_ID);
    const reason = listed.delete_blocked_reason;
    log(`the listing's delete_blocked_reason with a kernel running: ${JSON.stringify(reason)}`);
    if (reason) {
      await page.waitForFunction(el => el.getAttribute('data-blocked') === 'true', await del.elementHandle());
      check((await del.getAttribute('title')) === reason, `the blocked Delete's tooltip is the reason: "${reason}"`);
      check((await del.getAttribute('aria-disabled')) === 'true', 'and it is marked disabled for assistive technology');
      await focus(page, del);
      await page.keyboard.press('Enter');
      const why = page.locator('.jp-Dialog');
      await why.waitFor();
      check((await why.innerText()).includes(reason), 'Enter on it explains why, nothing is deleted');
      await screenshot(page, 'delete-blocked');
      await why.getByRole('button', { name: 'OK' }).click();
      await why.waitFor({ state: 'detached' });
    }
  } finally {
    await rest('api/', 'DELETE', `sessions/${session.body.id}`);
  }

  // -- the kernel shut down: Delete works
  await sidebar.getByRole('button', { name: 'Refresh environments' }).click();
  const del = row.locator(':scope > .jp-LayenvEnv-row').getByRole('button', { name: `Delete ${ENV_NAME}` });
  await page.waitForFunction(el => el.getAttribute('data-blocked') === null, await del.elementHandle());
  // by keyboard: Enter on Delete, the dialog's Cancel focused first, Tab to its Delete, Enter
  await focus(page, del);
  await page.keyboard.press('Enter');
  const confirm = page.locator('.jp-Dialog');
  await confirm.waitFor();
  const confirmDelete = confirm.getByRole('button', { name: `Delete ${ENV_NAME}` });
  for (let tabs = 0; tabs < 4 && !(await confirmDelete.evaluate(el => document.activeElement === el)); tabs++) {
    await page.keyboard.press('Tab');
  }
  await page.keyboard.press('Enter');
  await row.waitFor({ state: 'detached' });
  check(true, `${ENV_NAME} is deleted`);
  await page.waitForTimeout(300);
  const focused = await page.evaluate(() => {
    const el = document.activeElement;
    return el === document.body ? 'the page body' : el.getAttribute('aria-label') || el.tagName;
  });
  check(focused === 'Filter environments', `the focus goes to the sidebar's filter, not lost with the row (${focused})`);
  // its Packages tab (add, remove, restore on an env that is gone: each would fail) closes with it
  await page.waitForTimeout(300);
  const tabs = await page.locator('.lm-DockPanel-tabBar .lm-TabBar-tabLabel').allInnerTexts();
  log(`the main area's tabs after the delete: ${JSON.stringify(tabs)}`);
  check(!tabs.includes(`Packages of ${ENV_NAME}`), `the Packages tab of ${ENV_NAME} is closed`);
  // the tab of the job that created it stays (its log), but offers no notebook on a kernel that is gone
  const createdView = page.locator('.jp-LayenvProgressView', { hasText: `${ENV_NAME} was deleted since` });
  check((await createdView.count()) === 1, `the create's tab says ${ENV_NAME} was deleted since`);
  check((await createdView.getByRole('button', { name: 'Open a notebook with it' }).count()) === 0, 'and offers no notebook on it');
  await screenshot(page, 'deleted');
}

run(flow, { log, screenshot });
