#!/usr/bin/env node
/*
 * A new user's slow package change and failed one, in the Packages view of a layer, in a real Chromium against a
 * real JupyterLab (started by tests/ui/test_panel_slow_change.py): a layer made through the REST API → its
 * Packages view → add a package whose build takes minutes (the wheelhouse's slowbuild sdist) → Apply: the view
 * shows the job's progress and its live log, the sidebar's Jobs list it at once, and Cancel stops it (the layer
 * unchanged, the view usable again) → add a package no index has: the view says so → a create naming that package
 * fails: "Edit and try again" brings the form back as it was submitted, the package line fixed, the create works
 * → with the server's two build slots taken by slow creates, a create waits queued: its bar is indeterminate (no
 * value, no "0 %") until it runs.
 *
 * Environment: LAYENV_UI_URL, LAYENV_UI_TOKEN, LAYENV_UI_ARTIFACTS, LAYENV_UI_ENV_NAME, LAYENV_UI_BASE_ID,
 * LAYENV_UI_SLOW_PACKAGE, LAYENV_UI_MISSING_PACKAGE, CHROMIUM. Exit code 0 when every check held.
 */
'use strict';

const { reporter, openLab, openSidebar, api, createLayer, layerPackages, run } = require('./common.cjs');

const ENV_NAME = process.env.LAYENV_UI_ENV_NAME || 'slow_ui';
const BASE_ID = process.env.LAYENV_UI_BASE_ID || 'conda-py311_ai';
const SLOW = process.env.LAYENV_UI_SLOW_PACKAGE || 'slowbuild';
const MISSING = process.env.LAYENV_UI_MISSING_PACKAGE || 'no-such-package-anywhere';
const ENV_ID = `${BASE_ID}.${ENV_NAME}`;
const GOOD = process.env.LAYENV_UI_PACKAGE || 'iniconfig';

const { log, check, screenshot } = reporter('slowchange');

async function flow(page) {
  const created = await createLayer(ENV_NAME, BASE_ID);
  check(created.status === 202, `the layer is being created (${created.status})`);
  const before = await layerPackages(ENV_ID);

  await openLab(page);
  const sidebar = await openSidebar(page);
  await sidebar.getByRole('button', { name: 'Refresh environments' }).click();
  const row = sidebar.locator(`li.jp-LayenvEnv[data-env-id="${ENV_ID}"]`);
  await row.waitFor();
  await row.getByRole('button', { name: `Packages of ${ENV_NAME}` }).click();
  let view = page.locator('.jp-LayenvPackages').last();
  await view.locator('[aria-label="History"] li[data-revision="1"]').waitFor();

  // -- a slow change: progress, live log, listed in the sidebar, cancelled
  await view.getByLabel('Packages to add').fill(SLOW);
  await view.getByRole('button', { name: 'Preview' }).click();
  const plan = view.locator('.jp-LayenvPlan');
  await plan.waitFor({ timeout: 120000 });
  log(`the plan: ${JSON.stringify(await plan.innerText())}`);
  await plan.getByRole('button', { name: 'Apply' }).click();
  let job = view.locator('.jp-LayenvPackages-job');
  await job.waitFor();
  await page.waitForTimeout(2500);
  await screenshot(page, 'slow-running');
  log(`the job as the view shows it: ${JSON.stringify(await job.innerText())}`);
  check((await job.getByRole('progressbar').count()) === 1, 'the running change shows a progress bar');
  const listed = sidebar.locator('.jp-LayenvJob', { hasText: ENV_NAME });
  await listed.first().waitFor({ timeout: 3000 });
  check(/package change/.test(await listed.first().innerText()), 'the sidebar lists the package change at once');
  const logBox = job.locator('.jp-LayenvLog pre');
  await page.waitForFunction(
    ([el, pkg]) => el && new RegExp(`compiling ${pkg}|Building ${pkg}|${pkg}`).test(el.textContent),
    [await logBox.elementHandle(), SLOW],
    { timeout: 120000 }
  );
  check(true, 'the view shows the live log of the change');
  await screenshot(page, 'slow-log');
  // the tab closed and opened again meanwhile: the running change is shown there, with its Cancel
  await page.evaluate(() => window.jupyterapp.shell.currentWidget.close());
  await view.waitFor({ state: 'detached' });
  await row.getByRole('button', { name: `Packages of ${ENV_NAME}` }).click();
  view = page.locator('.jp-LayenvPackages').last();
  job = view.locator('.jp-LayenvPackages-job');
  await job.getByRole('button', { name: 'Cancel' }).waitFor({ timeout: 5000 });
  check(await view.getByLabel('Packages to add').isDisabled(), 'opened again, the view shows the running change, its form waits');
  await job.getByRole('button', { name: 'Cancel' }).click();
  await job.locator('.jp-LayenvBadge', { hasText: 'cancelled' }).waitFor({ timeout: 60000 });
  await screenshot(page, 'slow-cancelled');
  check(JSON.stringify(await layerPackages(ENV_ID)) === JSON.stringify(before), 'cancelled: the layer is as it was');
  check(await view.getByLabel('Packages to add').isEnabled(), 'and the view takes a new change');

  // -- a package no index has: the view says so
  await view.getByLabel('Packages to add').fill(MISSING);
  await view.getByRole('button', { name: 'Preview' }).click();
  const error = view.locator('.jp-LayenvError');
  await error.waitFor({ timeout: 120000 });
  const said = await error.innerText();
  log(`the error: ${JSON.stringify(said)}`);
  await screenshot(page, 'missing-package');
  check(said.includes(MISSING), 'the error names the package');
  check((await view.locator('.jp-LayenvPackages-job').count()) === 0, 'the cancelled job\'s line is gone: it is not this preview\'s outcome');

  // -- a create that fails on a typo: edit and try again, not type everything again
  const retryName = `${ENV_NAME}_retry`;
  await sidebar.getByRole('button', { name: 'New environment' }).click();
  const form = page.locator('form.jp-LayenvForm').last();
  await form.waitFor();
  await form.getByLabel('Name', { exact: true }).fill(retryName);
  await form.getByLabel('Base', { exact: true }).selectOption(BASE_ID);
  await form.getByLabel('Packages (one per line)').fill(`${GOOD}\n${MISSING}\n`);
  await form.getByRole('button', { name: 'Create' }).click();
  const failed = page.locator('.jp-LayenvProgressView', { hasText: retryName }).last();
  await failed.locator('.jp-LayenvProgress-status .jp-LayenvBadge', { hasText: 'failed' }).waitFor({ timeout: 120000 });
  await screenshot(page, 'create-failed');
  await failed.getByRole('button', { name: 'Edit and try again' }).click();
  const again = page.locator('form.jp-LayenvForm').last();
  await again.waitFor();
  const kept = {
    name: await again.getByLabel('Name', { exact: true }).inputValue(),
    base: await again.getByLabel('Base', { exact: true }).inputValue(),
    packages: await again.getByLabel('Packages (one per line)').inputValue(),
    inherit: await again.getByLabel("Inherit the base's packages").isChecked()
  };
  log(`the form again: ${JSON.stringify(kept)}`);
  check(kept.name === retryName && kept.base === BASE_ID && kept.packages === `${GOOD}\n${MISSING}\n` && kept.inherit,
    'the form comes back as it was submitted');
  await again.getByLabel('Packages (one per line)').fill(`${GOOD}\n`);
  await screenshot(page, 'create-edited');
  await again.getByRole('button', { name: 'Create' }).click();
  const done = page.locator('.jp-LayenvProgressView', { hasText: retryName }).last();
  await done.locator('.jp-LayenvProgress-status .jp-LayenvBadge', { hasText: 'succeeded' }).waitFor({ timeout: 120000 });
  check(true, `fixed, ${retryName} is created`);
  await screenshot(page, 'create-retried');

  // -- queued behind two slow builds: nothing is measured yet, the bar says so
  const slowJobs = [];
  for (const n of [1, 2]) {
    const started = await api('POST', 'environments', { name: `${ENV_NAME}_busy${n}`, base: BASE_ID, packages: [SLOW] });
    check(started.status === 202, `a slow create takes build slot ${n} (${started.status})`);
    slowJobs.push(started.body.id);
  }
  try {
    for (let waited = 0; waited < 60000; waited += 250) {
      const states = await Promise.all(slowJobs.map(async id => (await api('GET', `jobs/${id}`)).body.state));
      if (states.every(s => s === 'running')) {
        break;
      }
      await page.waitForTimeout(250);
    }
    const queuedName = `${ENV_NAME}_queued`;
    await sidebar.getByRole('button', { name: 'New environment' }).click();
    const third = page.locator('form.jp-LayenvForm').last();
    await third.waitFor();
    await third.getByLabel('Name', { exact: true }).fill(queuedName);
    await third.getByLabel('Base', { exact: true }).selectOption(BASE_ID);
    await third.getByRole('button', { name: 'Create' }).click();
    const queued = page.locator('.jp-LayenvProgressView', { hasText: queuedName }).last();
    await queued.locator('.jp-LayenvProgress-status .jp-LayenvBadge', { hasText: 'queued' }).waitFor();
    await page.waitForTimeout(1500);
    await screenshot(page, 'queued');
    const bar = queued.getByRole('progressbar');
    const seen = await bar.evaluate(el => ({ now: el.getAttribute('aria-valuenow'), cls: el.className }));
    log(`the queued job's bar: ${JSON.stringify(seen)}`);
    check(seen.now === null && /jp-mod-indeterminate/.test(seen.cls), 'a queued create shows an indeterminate bar, no value');
    check((await queued.locator('.jp-LayenvProgress-pct').count()) === 0, 'and no "0 %"');
    const moving = await bar.locator('.jp-LayenvProgress-fill').evaluate(el => el.getAnimations().map(a => a.playState));
    check(moving.includes('running'), `its stripe moves (${JSON.stringify(moving)})`);
    const waiting = await queued.locator('.jp-LayenvProgress-step').innerText();
    check(waiting === 'waiting for other jobs to finish', `it says what it waits for: "${waiting}"`);
    await queued.getByRole('button', { name: 'Cancel' }).click();
    await queued.locator('.jp-LayenvProgress-status .jp-LayenvBadge', { hasText: 'cancelled' }).waitFor();
  } finally {
    for (const id of slowJobs) {
      await api('DELETE', `jobs/${id}`);
    }
  }
}

run(flow, { log, screenshot });
