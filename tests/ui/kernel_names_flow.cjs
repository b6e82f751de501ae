#!/usr/bin/env node
/*
 * A notebook saved under nb_conda_kernels, in a real Chromium against a real JupyterLab (started by
 * tests/ui/test_kernel_names_ui.py): its metadata names a kernel /api/kernelspecs does not list
 * (conda-env-py311_ai-py) → opening it shows no "Select Kernel" dialog → its session runs the listed kernel the
 * server resolves the name to → left alone for several autosave intervals, the notebook is not dirty and its file
 * (on the server) still names the saved kernel → a cell prints the env's marker and prefix.
 *
 * Environment: LAYENV_UI_URL, LAYENV_UI_TOKEN, LAYENV_UI_ARTIFACTS, LAYENV_UI_NOTEBOOK (its path in the server's
 * root), LAYENV_UI_SAVED_NAME, LAYENV_UI_ENV_PATH, CHROMIUM. Exit code 0 when every check held.
 */
"use strict";

const {
  reporter,
  openLab,
  api,
  rest,
  run,
  URL_,
  TOKEN,
} = require("./common.cjs");

const NOTEBOOK = process.env.LAYENV_UI_NOTEBOOK;
const SAVED_NAME = process.env.LAYENV_UI_SAVED_NAME;
const ENV_PATH = process.env.LAYENV_UI_ENV_PATH;
const AUTOSAVE_S = Number(process.env.LAYENV_UI_AUTOSAVE_S || 2);

const { log, check, screenshot } = reporter("kernelnames");

async function flow(page) {
  // -- 1. the saved name is not listed; the server says which listed kernel it starts
  const specs = await (
    await fetch(`${URL_}api/kernelspecs`, {
      headers: { Authorization: `token ${TOKEN}` },
    })
  ).json();
  check(
    !(SAVED_NAME in specs.kernelspecs),
    `/api/kernelspecs does not list ${SAVED_NAME}`,
  );
  const pythons = Object.values(specs.kernelspecs).filter(
    (s) => s.spec.language === "python",
  );
  check(
    pythons.length >= 2,
    `${pythons.length} Python kernels: the language alone picks none`,
  );
  const resolved = await api(
    "GET",
    `kernel-names/${encodeURIComponent(SAVED_NAME)}`,
  );
  check(
    resolved.status === 200 && resolved.body.kernel in specs.kernelspecs,
    `the server resolves it to ${resolved.body.kernel}`,
  );
  const kernel = resolved.body.kernel;

  // -- 2. open the notebook: no dialog, its session starts that kernel
  await openLab(page);
  // the colleague saved it from this env's Python: the language_info its kernel reports (JupyterLab itself marks
  // a notebook dirty when the kernel reports another one; only the kernel name may differ here)
  const languageInfo = await page.evaluate(async (name) => {
    const k = await window.jupyterapp.serviceManager.kernels.startNew({ name });
    const info = await k.info;
    await k.shutdown();
    return info.language_info;
  }, kernel);
  const file = (await rest("api/", "GET", `contents/${NOTEBOOK}`)).body;
  file.content.metadata.language_info = languageInfo;
  const put = await rest("api/", "PUT", `contents/${NOTEBOOK}`, {
    type: "notebook",
    format: "json",
    content: file.content,
  });
  check(put.status === 200, `saved with its kernel's language_info (${put.status})`);
  const saved = await rest("api/", "GET", `contents/${NOTEBOOK}`);
  await page.evaluate(async (path) => {
    await window.jupyterapp.commands.execute("docmanager:open", {
      path,
      factory: "Notebook",
    });
  }, NOTEBOOK);
  const name = await page
    .waitForFunction(
      (path) => {
        const widget = window.jupyterapp.shell.currentWidget;
        const session =
          widget && widget.context && widget.context.path === path
            ? widget.sessionContext
            : null;
        const k = session && session.session && session.session.kernel;
        return k && k.connectionStatus === "connected" && k.status === "idle"
          ? k.name
          : null;
      },
      NOTEBOOK,
      { timeout: 120000, polling: 250 },
    )
    .then((h) => h.jsonValue())
    .catch(async (error) => {
      const dialog = await page.locator(".jp-Dialog").count();
      throw new Error(
        `no kernel started${dialog ? " (a dialog is open)" : ""}: ${error.message}`,
      );
    });
  check(name === kernel, `the notebook's session runs ${name}`);
  check(
    (await page.locator(".jp-Dialog").count()) === 0,
    'no "Select Kernel" dialog',
  );
  await screenshot(page, "opened");

  // -- 2b. only opened: not dirty, so autosave (every AUTOSAVE_S s here) never rewrites a colleague's file
  await page.waitForTimeout(AUTOSAVE_S * 3000);
  const dirty = await page.evaluate((path) => {
    const widget = window.jupyterapp.shell.currentWidget;
    return widget.context.path === path ? widget.context.model.dirty : null;
  }, NOTEBOOK);
  const tabDirty = await page
    .locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current.jp-mod-dirty")
    .count();
  await screenshot(page, "idle");
  check(dirty === false, `the notebook is not dirty after its kernel started (${dirty})`);
  check(tabDirty === 0, "its tab shows no unsaved-changes dot");
  const after = await rest("api/", "GET", `contents/${NOTEBOOK}`);
  log(`the file's kernelspec now: ${JSON.stringify(after.body.content.metadata.kernelspec)}`);
  check(
    after.body.last_modified === saved.body.last_modified,
    `its file was not written (${saved.body.last_modified} → ${after.body.last_modified})`,
  );
  check(
    after.body.content.metadata.kernelspec.name === SAVED_NAME,
    `the file still names ${SAVED_NAME}`,
  );

  // -- 3. the kernel is the env's: a cell prints its marker and prefix
  await page.locator(".jp-Notebook .jp-Cell").first().click();
  await page.evaluate(async () => {
    await window.jupyterapp.commands.execute("notebook:run-cell");
  });
  const output = page
    .locator(".jp-OutputArea-output", { hasText: "env:" })
    .first();
  await output.waitFor({ timeout: 60000 });
  const text = await output.innerText();
  check(
    text.includes("py311_ai") && text.includes(ENV_PATH),
    `the cell ran in the env: ${text.trim()}`,
  );
  check((await page.locator(".jp-Dialog").count()) === 0, "still no dialog");
  await screenshot(page, "ran");
  log(`done (${kernel})`);
}

run(flow, { log, screenshot });
