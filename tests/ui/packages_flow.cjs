#!/usr/bin/env node
/*
 * The Packages view of a layer in a real Chromium against a real JupyterLab (started by
 * tests/ui/test_panel_packages.py): a layer made through the REST API → its Packages button in the sidebar →
 * add a package: the dry-run plan first (install, kept from the base), then Apply → the job ends with "restart
 * the kernels" and the package is in the layer → the history lists both revisions → Remove it (its plan first)
 * → Restore revision 2 (confirmed) → the package is back, a fourth revision recorded → the picture of the README
 * (docs/panel.png: the layer filtered in the tree, Storage open, the Packages view).
 *
 * Environment: LAYENV_UI_URL, LAYENV_UI_TOKEN, LAYENV_UI_ARTIFACTS, LAYENV_UI_ENV_NAME (the layer to make),
 * LAYENV_UI_BASE_ID, LAYENV_UI_PACKAGE (only the wheelhouse has it), CHROMIUM. Exit code 0 when every check held.
 */
'use strict';

const { reporter, openLab, openSidebar, api, createLayer, layerPackages, restoreRevision, run } = require('./common.cjs');

const ENV_NAME = process.env.LAYENV_UI_ENV_NAME || 'pkgs_ui';
const BASE_ID = process.env.LAYENV_UI_BASE_ID || 'conda-py311_ai';
const PACKAGE = process.env.LAYENV_UI_PACKAGE || 'iniconfig';
const ENV_ID = `${BASE_ID}.${ENV_NAME}`;

const { log, check, screenshot } = reporter('packages');

async function flow(page) {
  // a layer without packages, made through the REST API
  const created = await createLayer(ENV_NAME, BASE_ID);
  check(created.status === 202, `the layer is being created (${created.status})`);

  await openLab(page);
  const sidebar = await openSidebar(page);
  await sidebar.getByRole('button', { name: 'Refresh environments' }).click();
  const row = sidebar.locator(`li.jp-LayenvEnv[data-env-id="${ENV_ID}"]`);
  await row.waitFor();
  check(
    (await sidebar.locator(`li.jp-LayenvEnv[data-env-id="${BASE_ID}"] > .jp-LayenvEnv-row`)
      .getByRole('button', { name: /^Packages of/ }).count()) === 0,
    'a Conda base has no Packages button (its packages are conda\'s)'
  );
  await row.getByRole('button', { name: `Packages of ${ENV_NAME}` }).click();
  const view = page.locator('.jp-LayenvPackages').last();
  await view.locator('h2', { hasText: `Packages of ${ENV_NAME}` }).waitFor();
  await view.locator('[aria-label="History"] li[data-revision="1"]').waitFor();
  await screenshot(page, 'view');

  // add: the plan first, nothing done yet
  await view.getByLabel('Packages to add').fill(PACKAGE);
  await view.getByRole('button', { name: 'Preview' }).click();
  const plan = view.locator('.jp-LayenvPlan');
  await plan.waitFor();
  const install = await plan.locator('.jp-LayenvPlan-install').innerText();
  check(new RegExp(`${PACKAGE} \\d`).test(install), `the plan installs ${PACKAGE}: "${install}"`);
  check(!(await layerPackages(ENV_ID)).includes(PACKAGE), 'a preview changes nothing');
  await screenshot(page, 'plan');
  await plan.getByRole('button', { name: 'Apply' }).click();
  const notice = view.locator('.jp-LayenvNotice');
  await notice.waitFor({ timeout: 120000 });
  check(/Restart the kernels/.test(await notice.innerText()), 'after the change: restart the kernels to use it');
  await view.locator(`[aria-label="Layer packages"] li[data-package="${PACKAGE}"]`).waitFor();
  check((await layerPackages(ENV_ID)).includes(PACKAGE), `${PACKAGE} is in the layer`);
  await view.locator('[aria-label="History"] li[data-revision="2"]').waitFor();
  await screenshot(page, 'changed');

  // remove: the plan first (nothing else goes), then Apply
  await view.getByRole('button', { name: `Remove ${PACKAGE}` }).click();
  await plan.waitFor();
  const removing = await plan.locator('.jp-LayenvPlan-remove').innerText();
  check(new RegExp(`${PACKAGE} \\d`).test(removing) && /Install: nothing/.test(await plan.innerText()),
    `the plan removes ${PACKAGE} and installs nothing: "${removing}"`);
  await screenshot(page, 'remove-plan');
  await plan.getByRole('button', { name: 'Apply' }).click();
  await view.locator('[aria-label="History"] li[data-revision="3"]').waitFor({ timeout: 120000 });
  await view.locator(`[aria-label="Layer packages"] li[data-package="${PACKAGE}"]`).waitFor({ state: 'detached' });
  check(!(await layerPackages(ENV_ID)).includes(PACKAGE), `${PACKAGE} is removed`);

  // restore revision 2 (with the package): confirmed, recorded as revision 4
  await restoreRevision(page, view, 2, 4, { screenshot, stage: 'restore-confirm' });
  await view.locator(`[aria-label="Layer packages"] li[data-package="${PACKAGE}"]`).waitFor();
  check((await layerPackages(ENV_ID)).includes(PACKAGE), `after restoring revision 2 ${PACKAGE} is back`);
  check(/restore of revision 2/.test(await view.locator('[aria-label="History"] li[data-revision="4"]').innerText()),
    'the restore is the newest revision');
  await screenshot(page, 'restored');
  check(/\(1 package\)/.test(await view.locator('[aria-label="History"] li[data-revision="2"]').innerText()),
    'a revision counts its packages in plain words ("1 package")');

  // the picture of the README (docs/panel.png): the layer in the tree, Storage open, its Packages view
  await sidebar.getByLabel('Filter environments').fill(ENV_NAME);
  const storage = sidebar.locator('section[aria-label="Storage"]');
  await storage.getByRole('button', { name: 'Storage' }).click();
  const rootLine = storage.locator('ul[aria-label="Storage by place"] li .jp-LayenvStorage-line').first();
  await rootLine.waitFor();
  const groupLine = await rootLine.innerText();
  check(
    / in \d+ of \d+ environments? · (owned by \S+|owner unknown|owners: .+)$/.test(groupLine),
    `a group's line says what it counts of it (the filter is set) and whose it is: "${groupLine}"`
  );
  // the layer's row at the top of the sidebar, Storage below it
  await row.evaluate(el => el.scrollIntoView({ block: 'start' }));
  await page.waitForTimeout(200);
  await screenshot(page, 'panel');

  // a layer made by hand (the tree's myexp_env) has no revisions: its History says why, in the server's words
  await sidebar.getByLabel('Filter environments').fill('myexp_env');
  await sidebar.getByRole('button', { name: 'Packages of myexp_env', exact: true }).click();
  const handmade = page.locator('.jp-LayenvPackages').last();
  await handmade.locator('h2', { hasText: 'Packages of myexp_env' }).waitFor();
  const none = handmade.locator('[aria-label="History"] .jp-LayenvEmpty');
  await none.waitFor();
  await page.waitForFunction(el => /has no revisions/.test(el.textContent), await none.elementHandle());
  const said = await none.innerText();
  check(/^myexp_env has no revisions \(made before jupyter_layenv recorded them, or not by it\)$/.test(said),
    `a layer without revisions says why where its history would be: "${said}"`);
  await screenshot(page, 'no-revisions');

  // an env without ipykernel (noipk): the command to run is shown whole on its own line, not cut by the clamp
  await sidebar.getByLabel('Filter environments').fill('noipk');
  const noipk = sidebar.locator('li.jp-LayenvEnv', { has: page.locator('.jp-LayenvEnv-command') }).first();
  const command = noipk.locator('.jp-LayenvEnv-command');
  await command.waitFor();
  const text = await command.innerText();
  check(/^\/\S+\/noipk\/bin\/python\S* -m pip install ipykernel$/.test(text), `the whole command: "${text}"`);
  const whole = await command.evaluate(el => {
    const box = el.getBoundingClientRect();
    const room = el.closest('.jp-LayenvEnv').getBoundingClientRect();
    return el.scrollWidth <= el.clientWidth && el.scrollHeight <= el.clientHeight + 1 && box.right <= room.right + 1;
  });
  check(whole, 'the command is not cut off (no overflow, inside its row)');
  const explained = await noipk.locator('.jp-LayenvEnv-notkernel-text').innerText();
  check(/^Not a kernel: no ipykernel: run the command below/.test(explained), `the explanation: "${explained}"`);
  await screenshot(page, 'not-a-kernel');
}

run(flow, { log, screenshot });
