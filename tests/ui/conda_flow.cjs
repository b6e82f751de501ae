#!/usr/bin/env node
/*
 * A fresh machine in a real Chromium against a real JupyterLab (started by tests/ui/test_conda_ui.py): no Conda
 * env at all → the sidebar says how to get a first base → New environment → "Create a first base…" switches the
 * form to "A Conda base" with python=3.11 + ipykernel and shows the server's channel → Create → rattler's progress
 * to 100 % in the live log → the base is in the sidebar (exported as @EXPLICIT) and its kernel in the launcher → a spec naming a channel
 * is refused under Conda packages with the server's words.
 *
 * Environment: LAYENV_UI_URL, LAYENV_UI_TOKEN, LAYENV_UI_ARTIFACTS, LAYENV_UI_CHANNEL (the configured channel URL),
 * CHROMIUM. Screenshots: LAYENV_UI_ARTIFACTS/conda-NN-stage.png. Exit code 0 when every check held.
 */
'use strict';

const { reporter, openLab, openSidebar, api, exportEnv, run } = require('./common.cjs');

const CHANNEL = process.env.LAYENV_UI_CHANNEL;
const NAME = 'first_base';

const { log, check, screenshot } = reporter('conda');

async function flow(page) {
  await openLab(page);

  // -- 1. the sidebar on a machine with no Conda env says what to do
  const sidebar = await openSidebar(page);
  const empty = sidebar.locator('section[aria-label="Conda environments and their layers"] .jp-LayenvEmpty');
  await empty.waitFor();
  check(/Create a first base/.test(await empty.innerText()), 'the sidebar offers to create a first base');
  await screenshot(page, 'no-conda');

  // -- 2. New environment: "Create a first base…" fills the Conda base form
  await sidebar.getByRole('button', { name: 'New environment' }).click();
  const form = page.locator('form.jp-LayenvForm').last();
  await form.waitFor();
  await form.getByRole('button', { name: 'Create a first base…' }).click();
  check(await form.getByLabel('A Conda base').isChecked(), '"Create a first base…" switches to "A Conda base"');
  const packages = form.getByLabel('Conda packages (one match spec per line)');
  check((await packages.inputValue()) === 'python=3.11\nipykernel', 'the first base is python=3.11 + ipykernel');
  check((await form.innerText()).includes(CHANNEL), "the form names the server's channel");
  check((await form.getByLabel('Base', { exact: true }).count()) === 0, 'a Conda base needs no base');
  await form.getByLabel('Name', { exact: true }).fill(NAME);
  await screenshot(page, 'conda-form');

  // -- 3. create it: rattler's progress in the live log, to 100 %
  await form.getByRole('button', { name: 'Create' }).click();
  const progress = page.locator('.jp-LayenvProgressView').last();
  await progress.waitFor();
  await progress.locator('.jp-LayenvProgress-pct', { hasText: '100 %' }).waitFor({ timeout: 240000 });
  // 100 % can show a moment before the job's end (it ends once its environment is free again)
  const stateBadge = progress.locator('.jp-LayenvProgress-status .jp-LayenvBadge');
  await stateBadge.filter({ hasText: /succeeded|failed|cancelled/ }).waitFor({ timeout: 60000 });
  const state = await stateBadge.innerText();
  check(state === 'succeeded', `the job succeeded (state ${state})`);
  const logText = await progress.locator('.jp-LayenvLog pre').innerText();
  check(/link \d+\/\d+ python/.test(logText) && /solved in/.test(logText), "the live log shows rattler's solve and links");
  await progress.getByRole('button', { name: 'Open a notebook with it' }).waitFor();
  await screenshot(page, 'conda-done');

  // -- 4. the base is listed (no more hint), its kernel in the launcher
  const listing = (await api('GET', 'environments')).body;
  const made = listing.environments.find(env => env.name === NAME);
  check(made && made.kind === 'conda-env' && made.kernels.length === 1 && !listing.hint, 'GET environments lists the base');
  await sidebar.getByRole('button', { name: 'Refresh environments' }).click();
  const row = sidebar.locator(`li.jp-LayenvEnv[data-env-id="${made.id}"]`);
  await row.waitFor();
  check(true, 'the sidebar shows the new base');
  const explicit = (await exportEnv(page, row, NAME, 'explicit', { screenshot, stage: 'conda-export', prefix: 'conda' })).text;
  check(/^@EXPLICIT$/m.test(explicit) && /python-3\.11[^#\n]*#[0-9a-f]{32}$/m.test(explicit), 'the explicit export lists URL#md5');
  // the launcher opened last is the visible one (the start page's launcher stays in the DOM, hidden)
  await page.evaluate(async () => {
    await window.jupyterapp.commands.execute('launcher:create');
  });
  await page.locator(`.jp-LauncherCard[data-category="Notebook"][title="${made.kernels[0].display_name}"]`).last().waitFor();
  check(true, `the launcher has its kernel "${made.kernels[0].display_name}"`);
  await screenshot(page, 'conda-listed');

  // -- 5. a spec naming a channel is refused under its field, in the server's words
  await sidebar.getByRole('button', { name: 'New environment' }).click();
  const form2 = page.locator('form.jp-LayenvForm').last();
  await form2.waitFor();
  await form2.getByLabel('A Conda base').check();
  await form2.getByLabel('Name', { exact: true }).fill('refused_base');
  await form2.getByLabel('Conda packages (one match spec per line)').fill('conda-forge::numpy');
  await form2.getByRole('button', { name: 'Create' }).click();
  const error = form2.locator('.jp-LayenvFieldError, [role="alert"]', { hasText: 'names a channel' }).first();
  await error.waitFor();
  check(true, 'a spec naming a channel is refused with the reason');
  await screenshot(page, 'conda-refused');
}

run(flow, { log, screenshot });
