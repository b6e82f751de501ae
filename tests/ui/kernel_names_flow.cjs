#!/usr/bin/env node
/*
 * A notebook saved under nb_conda_kernels, in a real Chromium against a real JupyterLab (started by
 * tests/ui/test_kernel_names_ui.py): its metadata names a kernel /api/kernelspecs does not list
 * (conda-env-py311_ai-py) → opening it shows no "Select Kernel" dialog → its session runs the listed kernel the
 * server resolves the name to → a cell prints the env's marker and prefix.
 *
 * Environment: LAYENV_UI_URL, LAYENV_UI_TOKEN, LAYENV_UI_ARTIFACTS, LAYENV_UI_NOTEBOOK (its path in the server's
 * root), LAYENV_UI_SAVED_NAME, LAYENV_UI_ENV_PATH, CHROMIUM. Exit code 0 when every check held.
 */
"use strict";

const { reporter, openLab, api, run, URL_, TOKEN } = require("./common.cjs");

const NOTEBOOK = process.env.LAYENV_UI_NOTEBOOK;
const SAVED_NAME = process.env.LAYENV_UI_SAVED_NAME;
const ENV_PATH = process.env.LAYENV_UI_ENV_PATH;

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
