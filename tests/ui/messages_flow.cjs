#!/usr/bin/env node
/*
 * What the sidebar shows of the server's words, and what it asks of the server, in a real Chromium against a real
 * JupyterLab (started by tests/ui/test_panel_messages.py):
 * - "Not listed as kernels" and the not-a-kernel rows: the commands the server writes `like this` show as code,
 *   never with their backticks (text or tooltip);
 * - five kernels started together, then shut down: the sidebar reads the listing again once or twice, never the
 *   policy or the jobs (they do not depend on running kernels).
 *
 * Environment: LAYENV_UI_URL, LAYENV_UI_TOKEN, LAYENV_UI_ARTIFACTS, LAYENV_UI_BASE_ID, CHROMIUM.
 */
'use strict';

const { reporter, openLab, openSidebar, api, run } = require('./common.cjs');

const BASE_ID = process.env.LAYENV_UI_BASE_ID || 'conda-py311_ai';
const KERNELS = 5;

const { log, check, screenshot } = reporter('messages');

async function codeSpans(page, sidebar) {
  const section = sidebar.locator('section[aria-label="Not listed as kernels"]');
  const garbled = section.locator('li.jp-LayenvSkipped-item', { hasText: 'garbled' });
  await garbled.waitFor();
  await garbled.scrollIntoViewIfNeeded();
  await screenshot(page, 'not-listed');
  const reason = garbled.locator('.jp-LayenvSkipped-reason');
  const text = await reason.innerText();
  log(`the garbled venv's reason: ${JSON.stringify(text)}`);
  check(!(await section.innerText()).includes('`'), '"Not listed as kernels" shows no backtick');
  const code = await reason.locator('code').allInnerTexts();
  check(code.includes('python -m venv --clear'), `its command shows as code: ${JSON.stringify(code)}`);
  const sizes = await reason.evaluate(el => [el, el.querySelector('code')].map(e => parseFloat(getComputedStyle(e).fontSize)));
  check(sizes[1] <= sizes[0], `the code is no larger than the text around it (${sizes[1]} px in ${sizes[0]} px)`);
  const titles = await sidebar.evaluate(root => [...root.querySelectorAll('[title]')].map(el => el.title).filter(t => t.includes('`')));
  check(titles.length === 0, `no tooltip of the sidebar has a backtick: ${JSON.stringify(titles)}`);
  // a server message only ever becomes text and <code>: no other element inside a reason
  const elements = await section.locator('.jp-LayenvSkipped-reason *').evaluateAll(els => [...new Set(els.map(el => el.tagName))]);
  check(elements.every(tag => tag === 'CODE'), `a reason holds text and <code> only (${JSON.stringify(elements)})`);
}

async function kernelsSettle(page) {
  const kernel = (await api('GET', 'environments')).body.environments.find(e => e.id === BASE_ID).kernels[0].name;
  const asked = { environments: 0, policy: 0, jobs: 0 };
  page.on('request', request => {
    const m = /\/layenv\/(environments|policy|jobs)(\?|$)/.exec(request.url());
    if (m && request.method() === 'GET') {
      asked[m[1]] += 1;
    }
  });
  const quiet = async (what, ms) => {
    const count = { ...asked };
    await page.waitForTimeout(ms);
    log(`${what}: ${JSON.stringify(asked)}`);
    return JSON.stringify(count) === JSON.stringify(asked);
  };
  // the page's own start-up refreshes are over before counting
  for (let i = 0; i < 20 && !(await quiet('settling', 1000)); i++);
  const before = { ...asked };
  const ids = await page.evaluate(
    async ([name, n]) => {
      const sessions = window.jupyterapp.serviceManager.sessions;
      const started = await Promise.all(
        Array.from({ length: n }, (_, i) => sessions.startNew({ path: `k${i}.ipynb`, name: `k${i}.ipynb`, type: 'notebook', kernel: { name } }))
      );
      return started.map(s => s.id);
    },
    [kernel, KERNELS]
  );
  check(ids.length === KERNELS, `${KERNELS} kernels of ${kernel} started from the page`);
  await quiet('after the starts', 4000);
  const started = {
    environments: asked.environments - before.environments,
    policy: asked.policy - before.policy,
    jobs: asked.jobs - before.jobs
  };
  check(started.environments >= 1 && started.environments <= 2, `${KERNELS} kernels started: the listing read ${started.environments} time(s)`);
  check(started.policy === 0 && started.jobs === 0, `and neither the policy nor the jobs (${started.policy}, ${started.jobs})`);
  await screenshot(page, 'kernels-running');
  const mid = { ...asked };
  await page.evaluate(async list => {
    const sessions = window.jupyterapp.serviceManager.sessions;
    await Promise.all(list.map(id => sessions.shutdown(id)));
  }, ids);
  await quiet('after the shutdowns', 4000);
  const stopped = { environments: asked.environments - mid.environments, policy: asked.policy - mid.policy, jobs: asked.jobs - mid.jobs };
  check(stopped.environments >= 1 && stopped.environments <= 2, `${KERNELS} kernels shut down: the listing read ${stopped.environments} time(s)`);
  check(stopped.policy === 0 && stopped.jobs === 0, `and neither the policy nor the jobs (${stopped.policy}, ${stopped.jobs})`);
}

async function flow(page) {
  await openLab(page);
  const sidebar = await openSidebar(page);
  await sidebar.locator(`li.jp-LayenvEnv[data-env-id="${BASE_ID}"]`).waitFor();
  await codeSpans(page, sidebar);
  await kernelsSettle(page);
}

run(flow, { log, screenshot });
