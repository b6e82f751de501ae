#!/usr/bin/env node
/*
 * The whole panel flow in a real Chromium against a real JupyterLab (started by tests/ui/test_panel_ui.py):
 * sidebar grouped by base → launcher card "New environment" → bad name → a taken name flagged as it is typed → server error next to its field →
 * create with a package from the local wheelhouse → progress to 100 % → new kernel in the launcher → notebook
 * with it runs a cell (sys.prefix, a base package, the layer package) → page reload finds the job again →
 * export requirements.txt → delete (blocked for a Conda env, confirmed for the new layer) → a long job followed
 * live and cancelled → a failed job (the first line of its error, the installer's output under "Show log", in
 * the progress view and the sidebar) → from an environment.yml (no base fits: the closest bases and what each lacks; then a file
 * that fits is created on BASE_ID) → "1 environment" → 200 environments scroll and filter. The policy (GET layenv/policy) along the way: the
 * "Where" select offers the group root (the env is created there when LAYENV_UI_ROOT names it, and the sidebar
 * then shows its group and creator), a base left out by LayenvPolicy.allowed_bases is greyed out with the server's
 * reason (GET environments' layer_blocked_reason, naming the rule),
 * the packages help names the rules, a create naming a denied package is refused with the rule under Packages,
 * and a caller who may not create (a policy answered by the test) gets a disabled Create with the reason.
 *
 * Screenshots of every stage go to LAYENV_UI_ARTIFACTS/<theme>-NN-stage.png. Exit code 0 when every check held.
 *
 * Environment: LAYENV_UI_URL (server URL ending in /), LAYENV_UI_TOKEN, LAYENV_UI_ARTIFACTS, LAYENV_UI_THEME
 * (light|dark), LAYENV_UI_ENV_NAME (the env to create), LAYENV_UI_BASE_ID (its base), LAYENV_UI_BASE_PACKAGE
 * (a module only the base has), LAYENV_UI_PACKAGE (a package only the wheelhouse has), LAYENV_UI_SLOW_PACKAGE (an
 * sdist in the wheelhouse whose build never ends), LAYENV_UI_GROUP_ROOT (the group root's id), LAYENV_UI_ROOT (the
 * root to create in), LAYENV_UI_DENIED_PACKAGE (in LayenvPolicy.denied_packages), LAYENV_UI_REFUSED_BASE_ID (a
 * Conda env not in LayenvPolicy.allowed_bases), CHROMIUM (executable). The server's root dir holds
 * requirements-ui.txt (naming LAYENV_UI_PACKAGE), picked in the file browser by the dark run. LAYENV_UI_ORPHAN_NAME:
 * a layer in the user root whose base was deleted (listed as skipped, deleted from "Not listed as kernels").
 */
'use strict';

const { URL_, TOKEN, reporter, openLab, openSidebar, api, exportEnv, run } = require('./common.cjs');

const THEME = process.env.LAYENV_UI_THEME || 'light';
const ENV_NAME = process.env.LAYENV_UI_ENV_NAME || `ui_${THEME}`;
const BASE_ID = process.env.LAYENV_UI_BASE_ID || 'conda-py311_ai';
const BASE_PACKAGE = process.env.LAYENV_UI_BASE_PACKAGE || 'layenv_base_marker';
const PACKAGE = process.env.LAYENV_UI_PACKAGE || 'iniconfig';
const SLOW_PACKAGE = process.env.LAYENV_UI_SLOW_PACKAGE || 'slowbuild';
const GROUP_ROOT = process.env.LAYENV_UI_GROUP_ROOT || 'group:physics';
const ROOT = process.env.LAYENV_UI_ROOT || 'user';
const DENIED_PACKAGE = process.env.LAYENV_UI_DENIED_PACKAGE || 'forbidden-demo';
const REFUSED_BASE_ID = process.env.LAYENV_UI_REFUSED_BASE_ID || 'conda-rstats';
const EXISTING_NAME = process.env.LAYENV_UI_EXISTING_NAME || 'proj_uv';
const ORPHAN_NAME = process.env.LAYENV_UI_ORPHAN_NAME || `orphan_${THEME}`;
const MISSING_PACKAGE = 'not-in-the-wheelhouse';

const { log, check, screenshot } = reporter(THEME);

async function exec(page, command, args) {
  // Run a JupyterLab command in the page (its result, often a widget, stays there).
  await page.evaluate(
    async ([c, a]) => {
      await window.jupyterapp.commands.execute(c, a);
    },
    [command, args || {}]
  );
}

async function setTheme(page) {
  const theme = THEME === 'dark' ? 'JupyterLab Dark' : 'JupyterLab Light';
  await exec(page, 'apputils:change-theme', { theme });
  await page.waitForFunction(
    dark => document.body.getAttribute('data-jp-theme-light') === (dark ? 'false' : 'true'),
    THEME === 'dark'
  );
  await page.waitForTimeout(500);
}

function envItem(scope, id) {
  return scope.locator(`li.jp-LayenvEnv[data-env-id="${id}"]`);
}

async function flow(page) {
  await openLab(page);
  await setTheme(page);

  // -- 1. the sidebar: envs grouped by base
  const sidebar = await openSidebar(page);
  const base = envItem(sidebar, BASE_ID);
  await base.waitFor();
  const layersOfBase = base.locator(':scope > ul > li.jp-LayenvEnv');
  check((await layersOfBase.count()) >= 1, `${BASE_ID} shows its layers nested under it`);
  const root = sidebar.locator('li.jp-LayenvEnv.jp-mod-kind-conda-base').first();
  check(
    (await root.locator(`li.jp-LayenvEnv[data-env-id="${BASE_ID}"]`).count()) === 1,
    `${BASE_ID} sits under its Conda root`
  );
  const notKernels = sidebar.locator('section[aria-label="Not listed as kernels"] li');
  check((await notKernels.count()) >= 1, 'the "Not listed as kernels" section lists envs with reasons');
  await screenshot(page, 'sidebar');

  // filter
  await sidebar.getByLabel('Filter environments').fill('myexp');
  await page.waitForTimeout(200);
  const shownAfterFilter = await sidebar.locator('li.jp-LayenvEnv').count();
  check(shownAfterFilter >= 1 && shownAfterFilter <= 4, `the filter narrows the tree (${shownAfterFilter} rows)`);
  await screenshot(page, 'sidebar-filtered');
  await sidebar.getByLabel('Filter environments').fill('');

  // -- 1b. Storage: what the envs hold per root and owner, the largest with their last kernel start, and a
  // cleanup previewed (a dry run) before anything is removed. Sizes are measured in the background: reopening
  // the view asks again until the server has them.
  const storage = sidebar.locator('section[aria-label="Storage"]');
  const storageToggle = storage.getByRole('button', { name: 'Storage' });
  const largest = storage.locator('ul[aria-label="Largest environments"] li');
  let sized = false;
  for (let attempt = 0; attempt < 60 && !sized; attempt++) {
    if (attempt) {
      await storageToggle.click(); // closed
      await page.waitForTimeout(250);
    }
    await storageToggle.click(); // opened: GET usage
    await largest.first().waitFor();
    sized = /\d (bytes|KiB|MiB|GiB)/.test(await largest.first().innerText());
  }
  check(sized, `Storage shows the largest environment with its size: ${await largest.first().innerText()}`);
  check(
    (await storage.locator('ul[aria-label="Storage by place"] li').count()) >= 2,
    'Storage sums the sizes per root and owner'
  );
  await storage.getByRole('button', { name: 'Preview cleanup' }).click();
  const cleanup = storage.locator('.jp-LayenvStorage-summary');
  await cleanup.waitFor();
  check(/unused for 90 days/.test(await cleanup.innerText()), `the preview says what would go: ${await cleanup.innerText()}`);
  await screenshot(page, 'storage');
  await storageToggle.click();
  // once measured, the next listing gives each env its own size, next to its base's
  await sidebar.getByRole('button', { name: 'Refresh environments' }).click();
  const sizeBadge = base.locator(':scope > .jp-LayenvEnv-meta .jp-LayenvBadge.jp-mod-size');
  await sizeBadge.waitFor();
  check(/\d (bytes|KiB|MiB|GiB)/.test(await sizeBadge.innerText()), `${BASE_ID} shows its size: ${await sizeBadge.innerText()}`);

  // a base's delete button explains why it is not possible while layers are built on it
  // (aria-disabled, not disabled: it stays focusable, so the keyboard reaches the explanation too)
  const blockedButton = base.locator(':scope > .jp-LayenvEnv-row').getByRole('button', { name: `Delete ${await envName(base)}` });
  const blockedDialog = await pressForDialog(page, blockedButton);
  check(/is the base of .*delete those first/.test(await blockedDialog.innerText()), 'deleting a base with layers is explained, not attempted');
  await screenshot(page, 'delete-blocked');
  await blockedDialog.getByRole('button', { name: 'OK' }).click();
  await blockedDialog.waitFor({ state: 'detached' });

  // -- 1c. a layer whose base was deleted: not a kernel, but deletable from "Not listed as kernels", confirmed
  const orphan = sidebar.locator('section[aria-label="Not listed as kernels"] li', { hasText: `/${ORPHAN_NAME}` });
  await orphan.waitFor();
  check(/base deleted/.test(await orphan.innerText()), `${ORPHAN_NAME} is listed with its reason: ${await orphan.innerText()}`);
  const orphanDelete = orphan.getByRole('button', { name: `Delete ${ORPHAN_NAME}` });
  check((await orphanDelete.getAttribute('aria-disabled')) === null, `${ORPHAN_NAME} has an enabled Delete button`);
  await orphan.scrollIntoViewIfNeeded();
  await screenshot(page, 'orphan');
  await orphanDelete.click();
  const orphanDialog = page.locator('.jp-Dialog');
  await orphanDialog.waitFor();
  check((await orphanDialog.innerText()).includes(`Delete ${ORPHAN_NAME}?`), 'deleting it asks for confirmation');
  await screenshot(page, 'orphan-confirm');
  await orphanDialog.getByRole('button', { name: `Delete ${ORPHAN_NAME}` }).click();
  await orphanDialog.waitFor({ state: 'detached' });
  await orphan.waitFor({ state: 'detached' });
  check(true, `${ORPHAN_NAME} is deleted and gone from "Not listed as kernels"`);

  // -- 2. the create panel from the launcher card
  await exec(page, 'launcher:create');
  const card = page.locator('.jp-LauncherCard', { hasText: 'New environment' }).last();
  await card.waitFor();
  await screenshot(page, 'launcher-card');
  await card.click();
  const form = page.locator('form.jp-LayenvForm').last();
  await form.waitFor();
  const name = form.getByLabel('Name', { exact: true });
  // keyboard: the name field has the focus, Tab walks the labelled fields in order
  await page.waitForFunction(() => document.activeElement && /-name$/.test(document.activeElement.id));
  const order = [];
  for (let i = 0; i < 5; i++) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => document.activeElement.id.replace(/^jp-layenv-\d+-/, '')));
  }
  check(
    order.join(',') === 'root,base,inherit,packages,',
    `Tab goes name → where → base → inherit → packages → buttons (${order.join(',')})`
  );

  // the policy: where the caller may create, which bases, which packages
  const where = form.getByLabel('Where', { exact: true });
  const rootOptions = await where.locator('option').evaluateAll(els => els.map(o => ({ value: o.value, text: o.textContent, disabled: o.disabled })));
  const groupOption = rootOptions.find(o => o.value === GROUP_ROOT);
  check(!!groupOption && !groupOption.disabled, `"Where" offers the group root ${GROUP_ROOT}: "${groupOption && groupOption.text}"`);
  check((await where.inputValue()) === 'user', 'and the user root is the default');
  const baseSelect = form.getByLabel('Base', { exact: true });
  const refusedBase = baseSelect.locator(`option[value="${REFUSED_BASE_ID}"]`);
  const refusedText = (await refusedBase.textContent()).trim();
  check(
    (await refusedBase.isDisabled()) && /not allowed/.test(refusedText),
    `a base outside LayenvPolicy.allowed_bases is greyed out: "${refusedText}"`
  );
  // why: the server's own reason (GET environments' layer_blocked_reason), on the option and in the help
  const refusedWhy = (await refusedBase.getAttribute('title')) || '';
  const listed = (await api('GET', 'environments')).body;
  const refusedEnv = listed.environments.find(e => e.id === REFUSED_BASE_ID) || {};
  const serverWhy = refusedEnv.layer_blocked_reason;
  check(
    refusedWhy === serverWhy && refusedWhy.startsWith(`layers on ${refusedEnv.name} are not allowed`) &&
      /LayenvPolicy\.allowed_bases/.test(refusedWhy),
    `its tooltip is the server's layer_blocked_reason, naming it and the rule: "${refusedWhy}"`
  );
  const baseHelp = form.locator('[id$="-base-help"]');
  const baseHelpText = await baseHelp.innerText();
  check(
    baseHelpText.includes(refusedWhy) && /not allowed/.test(baseHelpText),
    `the help under Base quotes the server's reason: "${baseHelpText}"`
  );
  const pkgHelp = await form.locator('[id$="-packages-help"]').innerText();
  check(
    pkgHelp.includes(DENIED_PACKAGE) && /LayenvPolicy\.denied_packages/.test(pkgHelp) && /LayenvPolicy\.allow_direct_references/.test(pkgHelp),
    'the packages help says which packages, URLs and options are refused, naming each rule'
  );
  await name.focus();
  await name.fill('bad name!');
  const nameError = form.locator('[id$="-name-error"]');
  await nameError.waitFor({ state: 'visible' });
  check(/Only letters/.test(await nameError.innerText()), `a bad name is refused as you type: "${await nameError.innerText()}"`);
  check((await form.getByRole('button', { name: 'Create' }).isDisabled()) === true, 'Create is disabled while the name is bad');
  await screenshot(page, 'bad-name');

  // a name taken in the chosen root is flagged as it is typed: the listing is loaded already, no submit needed
  await name.fill(EXISTING_NAME);
  await page.waitForFunction(el => el && /exists already/.test(el.textContent), await nameError.elementHandle());
  const takenText = await nameError.innerText();
  check(takenText.includes(`/.virtualenvs/${EXISTING_NAME}`), `an existing name is flagged as it is typed: "${takenText}"`);
  check((await form.getByRole('button', { name: 'Create' }).isDisabled()) === true, 'Create is disabled while the name is taken');
  await screenshot(page, 'name-exists');

  // a server refusal lands next to the field it concerns
  await name.fill(ENV_NAME);
  await form.getByLabel('Base', { exact: true }).selectOption(BASE_ID);
  const packages = form.getByLabel('Packages (one per line)');
  await packages.fill('--index-url=http://example.invalid/simple');
  await form.getByRole('button', { name: 'Create' }).click();
  const pkgError = form.locator('[id$="-packages-error"]');
  await pkgError.waitFor({ state: 'visible' });
  check(/installer option/.test(await pkgError.innerText()), `the server's 400 is shown under Packages: "${await pkgError.innerText()}"`);
  await screenshot(page, 'server-error');

  // a create the policy refuses (403) shows the rule that refused it, under the field it concerns
  await packages.fill(`${DENIED_PACKAGE}\n`);
  await form.getByRole('button', { name: 'Create' }).click();
  await page.waitForFunction(
    el => el && /LayenvPolicy\.denied_packages/.test(el.textContent),
    await pkgError.elementHandle()
  );
  check(true, `a denied package is refused with its rule: "${await pkgError.innerText()}"`);
  await screenshot(page, 'policy-refused');
  await packages.fill('');
  await where.selectOption(ROOT);
  check((await where.inputValue()) === ROOT, `the env goes to the root ${ROOT}`);
  // -- 3. create with a package from the wheelhouse, watch the progress
  if (THEME === 'dark') {
    // the requirements.txt route, picked in the file browser (the light run types the package instead)
    await packages.fill('');
    await form.getByRole('button', { name: 'Pick from the file browser…' }).click();
    const picker = page.locator('.jp-Dialog');
    await picker.locator('.jp-DirListing-item', { hasText: 'requirements-ui.txt' }).click();
    await screenshot(page, 'pick-requirements');
    await picker.getByRole('button', { name: 'Select' }).click();
    await picker.waitFor({ state: 'detached' });
    const chosen = form.locator('.jp-LayenvReqFile');
    await chosen.waitFor();
    check(/requirements-ui\.txt \(1 requirements\)/.test(await chosen.innerText()), 'a requirements.txt picked in the file browser is taken');
  } else {
    await packages.fill(`${PACKAGE}\n`);
  }
  check(await form.getByLabel("Inherit the base's packages").isChecked(), 'inherit is on by default');
  await screenshot(page, 'form-filled');
  await form.getByRole('button', { name: 'Create' }).click();
  const progress = page.locator('.jp-LayenvProgressView').last();
  await progress.waitFor();
  await screenshot(page, 'progress-running');
  await progress.locator('.jp-LayenvProgress-pct', { hasText: '100 %' }).waitFor({ timeout: 180000 });
  // 100 % only once the job is done (the server says 1.0 while it still finishes): the badge says so already
  const state = await progress.locator('.jp-LayenvProgress-status .jp-LayenvBadge').innerText();
  check(state === 'succeeded', `100 % shows with the job succeeded (state ${state})`);
  const logText = await progress.locator('.jp-LayenvLog pre').innerText();
  check(logText.includes(PACKAGE), 'the live log shows the install of the package');
  await progress.getByRole('button', { name: 'Open a notebook with it' }).waitFor();
  await screenshot(page, 'progress-done');

  // -- 4. the new kernel is in the launcher at once
  const displayName = await progress.locator('.jp-LayenvSuccess strong').innerText();
  check(displayName.includes(ENV_NAME), `the new kernel is named "${displayName}"`);
  await exec(page, 'launcher:create');
  const kernelCard = page.locator(`.jp-LauncherCard[data-category="Notebook"][title="${displayName}"]`).last();
  await kernelCard.waitFor();
  check(true, `the launcher shows a notebook card "${displayName}" without a reload`);
  await screenshot(page, 'launcher-kernel');

  // -- 5. open a notebook with it and run a cell
  const progressTab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', { hasText: `Environment ${ENV_NAME}` });
  await progressTab.first().click();
  await progress.getByRole('button', { name: 'Open a notebook with it' }).click();
  const notebook = page.locator('.jp-NotebookPanel').last();
  await notebook.waitFor();
  await notebook.locator('.jp-Notebook-ExecutionIndicator, .jp-KernelStatus').first().waitFor().catch(() => undefined);
  const kernelName = notebook.locator('.jp-Toolbar-kernelName');
  await page.waitForFunction(
    ([el, want]) => el && el.textContent && el.textContent.includes(want),
    [await kernelName.elementHandle(), ENV_NAME]
  );
  // Run the cell only once the kernel is idle: a cell run while the session still connects is dropped.
  await notebook.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').first().waitFor({ timeout: 90000 });
  const cell = notebook.locator('.jp-Cell .cm-content').first();
  await cell.click();
  await page.keyboard.type(
    `import sys, ${BASE_PACKAGE}, ${PACKAGE}\nprint(sys.prefix)\nprint(${BASE_PACKAGE}.__file__)\nprint(${PACKAGE}.__file__)`
  );
  await page.keyboard.press('Shift+Enter');
  const output = notebook.locator('.jp-OutputArea-output').first();
  await output.waitFor({ timeout: 120000 });
  const out = await output.innerText();
  const lines = out.trim().split('\n');
  check(lines[0].endsWith(`/${ENV_NAME}`), `sys.prefix is the new env: ${lines[0]}`);
  check(!lines[1].includes(`/${ENV_NAME}/`) && lines[1].includes('py311_ai'), `${BASE_PACKAGE} comes from the base: ${lines[1]}`);
  check(lines[2].includes(`/${ENV_NAME}/`), `${PACKAGE} comes from the layer: ${lines[2]}`);
  await screenshot(page, 'notebook');
  await page.evaluate(async () => {
    await window.jupyterapp.serviceManager.sessions.shutdownAll();
  });

  // -- 6. a reload finds the job again: its tab is restored, and the sidebar lists it with a Show button
  await page.evaluate(async () => {
    // Leave without a "save changes?" prompt: the notebook's content does not matter any more.
    for (const widget of Array.from(window.jupyterapp.shell.widgets('main'))) {
      if (widget.context) {
        widget.context.model.dirty = false;
        widget.dispose();
      }
    }
  });
  await progressTab.first().waitFor();
  await page.waitForTimeout(1500); // the workspace (open tabs) is saved on a short debounce
  await page.goto(`${URL_}lab?token=${TOKEN}`);
  await page.waitForSelector('#jupyterlab-splash', { state: 'detached' });
  await page.waitForFunction(() => window.jupyterapp && window.jupyterapp.commands.hasCommand('layenv:create'));
  await page.evaluate(async () => {
    await window.jupyterapp.restored;
  });
  const restoredTab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', { hasText: `Environment ${ENV_NAME}` });
  await restoredTab.first().waitFor();
  check(true, 'after a reload the job\'s tab is restored');
  const sidebar2 = await openSidebar(page);
  const jobRow = sidebar2.locator('.jp-LayenvJob', { hasText: ENV_NAME });
  await jobRow.waitFor();
  await jobRow.getByRole('button', { name: /Show the job/ }).click();
  const restored = page.locator('.jp-LayenvProgressView', { hasText: ENV_NAME }).last();
  await restored.locator('.jp-LayenvProgress-pct', { hasText: '100 %' }).waitFor();
  await page.waitForFunction(
    ([el, pkg]) => el && el.textContent.includes(pkg),
    [await restored.locator('.jp-LayenvLog pre').elementHandle(), PACKAGE]
  );
  check(true, 'the sidebar lists the job; Show brings its progress view back with 100 % and the whole log');
  await screenshot(page, 'job-after-reload');

  // -- 7. export requirements.txt
  const created = envItem(sidebar2, `${BASE_ID}.${ENV_NAME}`).or(sidebar2.locator(`li.jp-LayenvEnv[data-env-path$="/${ENV_NAME}"]`)).first();
  await created.waitFor();
  check(
    (await base.locator(`li.jp-LayenvEnv[data-env-path$="/${ENV_NAME}"]`).count()) === 1,
    'the new env is listed under its base'
  );
  const scope = ROOT === 'user' ? 'user' : 'group';
  const badge = (await created.locator(':scope > .jp-LayenvEnv-meta .jp-LayenvBadge[class*="jp-mod-scope-"]').innerText()).trim();
  check(badge === scope, `its scope badge says ${scope}`);
  if (scope === 'group') {
    const owner = (await created.locator(':scope > .jp-LayenvEnv-owner').innerText()).trim();
    check(/^group \S+ · created by \S+$/.test(owner), `and whose it is: "${owner}"`);
    await screenshot(page, 'group-env');
    // the panel with the policy state (docs/panel.png): the group env in the tree, a form set for the group root
    await exec(page, 'layenv:create');
    const docForm = page.locator('form.jp-LayenvForm').last();
    await docForm.waitFor();
    await docForm.getByLabel('Name', { exact: true }).fill('lensing');
    await docForm.getByLabel('Where', { exact: true }).selectOption(GROUP_ROOT);
    await docForm.getByLabel('Packages (one per line)').fill('astropy\nhealpy>=1.16\n');
    await created.scrollIntoViewIfNeeded();
    await screenshot(page, 'policy-panel');
    await page.evaluate(() => window.jupyterapp.shell.currentWidget.close());
    await docForm.waitFor({ state: 'detached' });
  }
  const exported = await exportEnv(page, created, ENV_NAME, 'requirements.txt', { screenshot, stage: 'export-dialog', prefix: THEME });
  check(new RegExp(`^${PACKAGE}==`, 'mi').test(exported.text), `the exported ${exported.name} pins ${PACKAGE}`);

  // -- 8. delete it
  await created.locator(':scope > .jp-LayenvEnv-row').getByRole('button', { name: `Delete ${ENV_NAME}` }).click();
  const deleteDialog = page.locator('.jp-Dialog');
  await deleteDialog.waitFor();
  check((await deleteDialog.innerText()).includes(`Delete ${ENV_NAME}?`), 'delete asks for confirmation');
  await screenshot(page, 'delete-confirm');
  await deleteDialog.getByRole('button', { name: `Delete ${ENV_NAME}` }).click();
  await deleteDialog.waitFor({ state: 'detached' });
  await sidebar2.locator(`li.jp-LayenvEnv[data-env-path$="/${ENV_NAME}"]`).waitFor({ state: 'detached' });
  check(true, `${ENV_NAME} is gone from the sidebar`);
  await exec(page, 'launcher:create');
  await page.waitForTimeout(500);
  check(
    (await page.locator(`.jp-LauncherCard[data-category="Notebook"][title="${displayName}"]`).count()) === 0,
    'and its kernel is gone from the launcher'
  );
  await screenshot(page, 'deleted');

  // -- 9. a long job (a package whose build takes minutes) shows its live log, and Cancel stops it
  if (THEME === 'dark') {
    await sidebar2.getByRole('button', { name: 'New environment' }).click();
  } else {
    await exec(page, 'apputils:activate-command-palette');
    await page.locator('.lm-CommandPalette-input').fill('New Environment');
    await page.keyboard.press('Enter');
  }
  const slowName = `${ENV_NAME}_cancel`;
  const form2 = page.locator('form.jp-LayenvForm').last();
  await form2.waitFor();
  await form2.getByLabel('Name', { exact: true }).fill(slowName);
  await form2.getByLabel('Base', { exact: true }).selectOption(BASE_ID);
  if (THEME === 'dark') {
    await form2.getByLabel('Packages (one per line)').fill(`${SLOW_PACKAGE}\n`);
  } else {
    await form2.locator('input[type="file"]').setInputFiles({
      name: 'requirements.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from(`# builds for minutes\n${SLOW_PACKAGE}\n`)
    });
    const uploaded = form2.locator('.jp-LayenvReqFile');
    await uploaded.waitFor();
    check(/requirements\.txt \(1 requirements\)/.test(await uploaded.innerText()), 'an uploaded requirements.txt is taken');
  }
  await form2.getByRole('button', { name: 'Create' }).click();
  const slow = page.locator('.jp-LayenvProgressView', { hasText: slowName }).last();
  await slow.waitFor();
  await page.waitForFunction(
    ([el, pkg]) => el && new RegExp(`compiling ${pkg}|Building ${pkg}`).test(el.textContent),
    [await slow.locator('.jp-LayenvLog pre').elementHandle(), SLOW_PACKAGE],
    { timeout: 120000 }
  );
  const midPct = Number((await slow.locator('.jp-LayenvProgress-pct').innerText()).replace(/[^0-9]/g, ''));
  check(midPct > 0 && midPct < 100, `a running job shows its progress (${midPct} %) and its live log`);
  await screenshot(page, 'progress-live-log');
  await slow.getByRole('button', { name: 'Cancel' }).click();
  await slow.locator('.jp-LayenvProgress-status .jp-LayenvBadge', { hasText: 'cancelled' }).waitFor();
  check((await slow.locator('h2').innerText()).includes('cancelled'), 'Cancel stops the job');
  await screenshot(page, 'cancelled');
  const listing = (await api('GET', 'environments')).body;
  check(!listing.environments.some(e => e.name === slowName), 'the half-made environment is removed');

  await failedJobFlow(page, sidebar2);
  await envFileFlow(page);

  // -- 10. one environment is "1 environment"; 200 scroll inside the sidebar (header and filter stay), filter fast
  await page.route(/\/layenv\/environments(\?|$)/, route =>
    route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(syntheticListing(1)) })
  );
  await sidebar2.getByRole('button', { name: 'Refresh environments' }).click();
  const count = sidebar2.locator('.jp-LayenvSidebar-count');
  await page.waitForFunction(el => el && el.textContent.trim() === '1 environment', await count.elementHandle());
  check(true, 'a listing of one environment says "1 environment"');
  await page.unroute(/\/layenv\/environments(\?|$)/);
  const many = syntheticListing(200);
  await page.route(/\/layenv\/environments(\?|$)/, route =>
    route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(many) })
  );
  const t = Date.now();
  await sidebar2.getByRole('button', { name: 'Refresh environments' }).click();
  await sidebar2.locator('li.jp-LayenvEnv[data-env-id="bulk-199"]').waitFor({ state: 'attached' });
  const rendered = Date.now() - t;
  const scroll = sidebar2.locator('.jp-LayenvSidebar-scroll');
  const dims = await scroll.evaluate(el => ({ scroll: el.scrollHeight, client: el.clientHeight }));
  check(dims.scroll > dims.client * 5, `200 envs scroll inside the list (${dims.scroll}px in ${dims.client}px)`);
  await scroll.evaluate(el => el.scrollTo(0, el.scrollHeight / 2));
  check(await sidebar2.getByLabel('Filter environments').isVisible(), 'the filter stays in view while the list scrolls');
  check(rendered < 5000, `200 envs listed in ${rendered} ms`);
  await screenshot(page, 'many-envs');
  await sidebar2.getByLabel('Filter environments').fill('layer-17');
  await page.waitForTimeout(300);
  const matched = await sidebar2.locator('li.jp-LayenvEnv').count();
  check(matched >= 2 && matched <= 14, `filtering 200 envs by "layer-17" leaves ${matched} rows (matches and their bases)`);
  await screenshot(page, 'many-envs-filtered');
  await page.unroute(/\/layenv\/environments(\?|$)/);
  await sidebar2.getByLabel('Filter environments').fill('');

  // -- 11. a caller who may not create: the sidebar's "New environment" explains, the form's Create is disabled
  const policyUrl = /\/layenv\/policy(\?|$)/;
  const real = (await api('GET', 'policy')).body;
  check(real.roots.some(r => r.id === GROUP_ROOT && r.can_create), `GET policy lists the group root ${GROUP_ROOT}`);
  const refusal = 'you have 5 environments (at most 5); delete one first (rule LayenvPolicy.max_envs_per_user; ask your administrator to change it)';
  await page.route(policyUrl, route =>
    route.fulfill({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ ...real, can_create: false, create_refused: refusal, max_envs_per_user: 5, envs_owned: 5 })
    })
  );
  await sidebar2.getByRole('button', { name: 'Refresh environments' }).click();
  const newButton = sidebar2.getByRole('button', { name: 'New environment' });
  await page.waitForFunction(el => el && el.getAttribute('aria-disabled') === 'true', await newButton.elementHandle());
  const refusedDialog = await pressForDialog(page, newButton);
  check((await refusedDialog.innerText()).includes('LayenvPolicy.max_envs_per_user'), 'the sidebar\'s New environment says why not, naming the rule');
  await screenshot(page, 'create-refused-dialog');
  await refusedDialog.getByRole('button', { name: 'OK' }).click();
  await refusedDialog.waitFor({ state: 'detached' });
  await exec(page, 'layenv:create');
  const form3 = page.locator('form.jp-LayenvForm').last();
  await form3.waitFor();
  const refusedNote = form3.locator('.jp-LayenvRefused');
  await refusedNote.waitFor();
  check((await refusedNote.innerText()).includes('LayenvPolicy.max_envs_per_user'), 'the form shows the refusal');
  check(await form3.getByRole('button', { name: 'Create' }).isDisabled(), 'and its Create button is disabled');
  check(/You have 5 of at most 5 environments/.test(await form3.innerText()), 'the quota is shown under Create');
  await screenshot(page, 'create-refused-form');
  await page.unroute(policyUrl);
}

async function failedJobFlow(page, sidebar) {
  // -- 9a. a failed job: the first line of its error, the installer's output folded under "Show log"
  const failName = `${ENV_NAME}_fails`;
  await exec(page, 'layenv:create');
  const form = page.locator('form.jp-LayenvForm').last();
  await form.waitFor();
  await form.getByLabel('Name', { exact: true }).fill(failName);
  await form.getByLabel('Base', { exact: true }).selectOption(BASE_ID);
  await form.getByLabel('Packages (one per line)').fill(`${MISSING_PACKAGE}\n`);
  await form.getByRole('button', { name: 'Create' }).click();
  const failed = page.locator('.jp-LayenvProgressView', { hasText: failName }).last();
  await failed.locator('.jp-LayenvProgress-status .jp-LayenvBadge', { hasText: 'failed' }).waitFor({ timeout: 120000 });
  const error = failed.locator('.jp-LayenvJobError');
  const first = await error.locator('.jp-LayenvJobError-first').innerText();
  const jobs = (await api('GET', 'jobs')).body;
  const lines = (jobs.jobs.find(j => j.name === failName) || {}).error.trim().split('\n');
  check(
    lines.length > 1 && first === lines[0].trim() && !first.includes('\n'),
    `a failed job shows the first line of its ${lines.length}-line error: "${first}"`
  );
  const folded = error.locator('details.jp-LayenvJobError-log');
  check(!(await folded.evaluate(el => el.open)) && !(await folded.locator('pre').isVisible()), 'the rest is folded');
  await folded.locator('summary', { hasText: 'Show log' }).click();
  const rest = await folded.locator('pre').innerText();
  check(rest.includes(lines[lines.length - 1].trim()), '"Show log" unfolds the rest (the installer\'s output)');
  await screenshot(page, 'failed-job');
  const row = sidebar.locator('.jp-LayenvJob', { hasText: failName });
  await row.waitFor();
  const rowFirst = row.locator('.jp-LayenvJobError-first');
  const rowHeight = (await row.boundingBox()).height;
  check(
    (await rowFirst.innerText()) === first &&
      (await rowFirst.getAttribute('title')) === first &&
      // the clamp itself: fewer than 4 lines of the line's height (a 'normal' line height taken as 1.2 em)
      (await rowFirst.evaluate(el => {
        const style = getComputedStyle(el);
        const line = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);
        return el.getBoundingClientRect().height < 4 * line;
      })) &&
      !(await row.locator('details.jp-LayenvJobError-log pre').isVisible()) &&
      rowHeight < 160,
    `in the sidebar the failed job takes its error's first line, at most 3 lines of it (${Math.round(rowHeight)}px; ` +
      'the whole line in its tooltip), its log folded'
  );
  await screenshot(page, 'failed-job-sidebar');
  await page.evaluate(() => window.jupyterapp.shell.currentWidget.close());
}

/** A listing of `n` environments: a Conda root, conda envs with layers on them, and plain venvs. */
function syntheticListing(n) {
  const root = '/synthetic/miniconda3';
  const kernel = name => [{ name: `k-${name}`, display_name: `Python 3.11 (${name})`, language: 'python' }];
  const envs = [
    { id: 'bulk-root', name: 'base', path: root, kind: 'conda-base', base: null, python_version: '3.11.7', kernels: kernel('base'), writable: false, scope: 'system', skipped_reason: null }
  ];
  for (let i = 1; i < n; i++) {
    const id = i === n - 1 ? `bulk-${n - 1}` : `bulk-${i}`;
    if (i % 4 === 1) {
      envs.push({ id, name: `conda-${i}`, path: `${root}/envs/conda-${i}`, kind: 'conda-env', base: root, python_version: '3.11.7', kernels: kernel(`conda-${i}`), writable: true, scope: 'group', skipped_reason: null });
    } else if (i % 4 === 0) {
      envs.push({ id, name: `venv-${i}`, path: `/synthetic/.virtualenvs/venv-${i}`, kind: 'venv', base: null, python_version: '3.12.1', kernels: [], writable: true, scope: 'user', skipped_reason: 'no ipykernel: run pip install ipykernel' });
    } else {
      const b = i - (i % 4) + 1;
      envs.push({ id, name: `layer-${i}`, path: `/synthetic/.virtualenvs/layer-${i}`, kind: 'layered', base: `${root}/envs/conda-${b}`, python_version: '3.11.7', kernels: kernel(`conda-${b} ▸ layer-${i}`), writable: true, scope: 'user', skipped_reason: null });
    }
  }
  return { environments: envs, skipped: [{ path: '/synthetic/.virtualenvs/broken', reason: 'garbled pyvenv.cfg' }] };
}

/**
 * Focus a button and press Enter, and return the dialog it opens. For the aria-disabled buttons, which stay
 * focusable and explain themselves (a click waits for "enabled"; the keyboard is what must reach them anyway).
 */
async function envFileFlow(page) {
  // -- 9b. from an environment.yml: no base fits (the closest bases and what they lack), then one that fits
  await exec(page, 'layenv:create');
  const form = page.locator('form.jp-LayenvForm').last();
  await form.waitFor();
  await form.getByLabel('An environment.yml').check();
  check(!(await form.getByLabel('Base', { exact: true }).count()), 'from an environment.yml, the file picks the base');
  check(await form.getByRole('button', { name: 'Create' }).isDisabled(), 'Create waits for a file');
  const upload = form.locator('input[type="file"][accept=".yml,.yaml"]');
  const yml = (name, text) => ({ name, mimeType: 'text/yaml', buffer: Buffer.from(text) });
  await upload.setInputFiles(yml('gpu.yml', 'name: ui_gpu\ndependencies:\n  - python=2.7\n  - ipykernel\n'));
  await form.locator('.jp-LayenvReqFile', { hasText: 'gpu.yml' }).waitFor();
  await form.getByRole('button', { name: 'Create' }).click();
  const fileError = form.locator('[id$="-envfile-error"]');
  await fileError.waitFor({ state: 'visible' });
  check(/No Conda environment here has all the Conda dependencies/.test(await fileError.innerText()), `no base fits: "${await fileError.innerText()}"`);
  const closest = form.locator('.jp-LayenvClosest li').first();
  const closestText = await closest.innerText();
  check(closestText.startsWith(BASE_ID) && /python=2\.7 \(this base has 3\./.test(closestText), `the closest base and what it lacks: "${closestText}"`);
  await screenshot(page, 'envfile-no-base');

  const fileEnv = `ui_file_${THEME}`;
  const text = `name: ${fileEnv}\nchannels: [conda-forge]\ndependencies:\n  - python=3\n  - ipykernel\n  - pip:\n      - ${PACKAGE}\n`;
  await upload.setInputFiles(yml('environment.yml', text));
  await form.locator('.jp-LayenvReqFile', { hasText: 'environment.yml' }).waitFor();
  check(!(await form.locator('.jp-LayenvClosest').count()), 'a new file clears the previous refusal');
  await form.getByRole('button', { name: 'Create' }).click();
  const progress = page.locator('.jp-LayenvProgressView', { hasText: fileEnv }).last();
  await progress.waitFor();
  await progress.locator('.jp-LayenvProgress-pct', { hasText: '100 %' }).waitFor({ timeout: 180000 });
  check((await progress.locator('.jp-LayenvBadge').innerText()) === 'succeeded', `${fileEnv} was created from the file`);
  await screenshot(page, 'envfile-created');
  const made = (await api('GET', `environments/${BASE_ID}.${fileEnv}`)).body;
  check(made.base && made.packages.layer.some(p => p.name === PACKAGE), `on ${BASE_ID}, with ${PACKAGE} from the pip section`);
  const deleted = await api('DELETE', `environments/${BASE_ID}.${fileEnv}`);
  check(deleted.status === 204, `${fileEnv} deleted again`);
}

async function pressForDialog(page, button) {
  const dialog = page.locator('.jp-Dialog');
  for (let attempt = 1; ; attempt++) {
    // JupyterLab may move the focus to the main area (the launcher, after a theme switch or a restore), before
    // or after the button got it: each step waits briefly, then the button is focused again.
    try {
      await button.focus();
      await page.waitForFunction(el => document.activeElement === el, await button.elementHandle(), { timeout: 2000 });
      await page.keyboard.press('Enter');
      await dialog.waitFor({ timeout: 3000 });
      return dialog;
    } catch (error) {
      if (attempt === 5) {
        throw error;
      }
      log(`no dialog (attempt ${attempt}: ${String(error.message).split('\n')[0]}), focusing the button again`);
    }
  }
}

async function envName(item) {
  return (await item.locator(':scope > .jp-LayenvEnv-row .jp-LayenvEnv-name').innerText()).trim();
}

run(flow, { log, screenshot });
