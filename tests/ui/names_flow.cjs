#!/usr/bin/env node
/*
 * A layer with a long name in the sidebar, in a real Chromium against a real JupyterLab (started by
 * tests/ui/test_panel_names.py): the whole name is readable (nothing cut off, no ellipsis), its actions never
 * cover it and stay inside the panel, and its tooltip gives the full name. The sidebar opens at its narrowest
 * (JupyterLab's --jp-sidebar-min-width), with the layer nested two levels deep: the least room a name gets. There,
 * short names (the home tree's myexp_env and proj_uv, two levels deep too) keep their actions beside them, on the
 * name's first line. There too: every path (the rows', Storage's places) fits its line whole or cut at a "/" with
 * "…" first (the end kept, the whole path in its title), a kernel's display name never breaks inside its
 * parentheses, and with the filter set Storage lists only what the tree shows.
 *
 * Environment: LAYENV_UI_URL, LAYENV_UI_TOKEN, LAYENV_UI_ARTIFACTS, LAYENV_UI_ENV_NAME (the long name),
 * LAYENV_UI_BASE_ID, CHROMIUM. Exit code 0 when every check held.
 */
'use strict';

const { reporter, openLab, openSidebar, api, createLayer, run } = require('./common.cjs');

const ENV_NAME = process.env.LAYENV_UI_ENV_NAME;
const BASE_ID = process.env.LAYENV_UI_BASE_ID || 'conda-py311_ai';
const ENV_ID = `${BASE_ID}.${ENV_NAME}`;

const { log, check, screenshot } = reporter('names');

/** Where the name and the row's buttons are, and whether the name's text overflows its box. */
async function measure(row) {
  return row.evaluate(element => {
    const box = e => {
      const r = e.getBoundingClientRect();
      return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
    };
    const name = element.querySelector(':scope > .jp-LayenvEnv-row .jp-LayenvEnv-name');
    const buttons = [...element.querySelectorAll(':scope > .jp-LayenvEnv-row .jp-LayenvEnv-actions button')];
    const panel = element.closest('#jupyter-layenv-sidebar');
    return {
      title: name.getAttribute('title') || '',
      text: name.innerText,
      hidden: name.scrollWidth - name.clientWidth,
      name: box(name),
      buttons: buttons.map(b => ({ label: b.getAttribute('aria-label'), ...box(b) })),
      panel: box(panel)
    };
  });
}

function overlaps(a, b) {
  return a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
}

async function checkRow(row, where) {
  const m = await measure(row);
  log(`${where}: name ${JSON.stringify(m.name)}, ${m.hidden}px hidden; buttons ${JSON.stringify(m.buttons)}`);
  check(m.text.trim() === ENV_NAME, `${where}: the row shows the whole name (${m.text.trim()})`);
  check(m.hidden <= 0, `${where}: no part of the name is cut off (${m.hidden}px overflow)`);
  check(m.title.includes(ENV_NAME), `${where}: the name's tooltip gives the full name ("${m.title}")`);
  check(m.buttons.length >= 3, `${where}: the row has its actions (${m.buttons.length})`);
  for (const button of m.buttons) {
    check(!overlaps(m.name, button), `${where}: "${button.label}" does not cover the name`);
    check(button.right <= m.panel.right + 0.5, `${where}: "${button.label}" stays inside the panel`);
  }
}

/** A short name's actions sit beside it: each button starts within the name's first line, inside the panel. */
async function checkShortRow(row, name) {
  const m = await measure(row);
  log(`${name}: name ${JSON.stringify(m.name)}; buttons ${JSON.stringify(m.buttons)}`);
  check(m.text.trim() === name, `${name}: the row shows the whole name (${m.text.trim()})`);
  check(m.buttons.length >= 3, `${name}: the row has its actions (${m.buttons.length})`);
  for (const button of m.buttons) {
    check(button.top < m.name.top + 12, `${name}: "${button.label}" is on the name's line, not under it`);
    check(!overlaps(m.name, button), `${name}: "${button.label}" does not cover the name`);
    check(button.right <= m.panel.right + 0.5, `${name}: "${button.label}" stays inside the panel`);
  }
}

/**
 * Each path line of `scope` (a locator): the whole path, or "…" and its end from a "/", or, for a last name that
 * alone is wider than the line, "…/" and that name's start and end with "…" between; never cut by CSS.
 */
async function checkPaths(scope, where) {
  const paths = await scope.locator('.jp-LayenvPath').evaluateAll(elements =>
    elements.map(e => ({
      text: e.textContent.replace(/\u200e/g, ''),
      full: e.getAttribute('title') || '',
      hidden: e.scrollWidth - e.clientWidth
    }))
  );
  check(paths.length > 0, `${where}: there are paths (${paths.length})`);
  for (const p of paths) {
    log(`${where}: "${p.text}" of "${p.full}", ${p.hidden}px hidden`);
    const last = p.full.replace(/\/+$/, '').split('/').pop();
    const middle = /^…\/([^/…]+)…([^/…]+)\/*$/.exec(p.text);
    check(p.hidden <= 0, `${where}: "${p.text}" is not cut off (${p.hidden}px hidden)`);
    check(
      p.text === p.full ||
        (p.text.startsWith('…/') && p.full.endsWith(p.text.slice(1))) ||
        (middle !== null && last.startsWith(middle[1]) && last.endsWith(middle[2])),
      `${where}: "${p.text}" is "${p.full}", its end from a "/" after "…", or its last name's two ends`
    );
  }
  return paths.filter(p => p.text !== p.full).length;
}

/** Each kernel name of the tree: its "(…)" on one line; when it does not fit, its title gives the whole name. */
async function checkKernelNames(sidebar) {
  const names = await sidebar.locator('.jp-LayenvKernel').evaluateAll(elements =>
    elements.map(li => {
      const text = li.textContent;
      const open = text.indexOf('(');
      const close = text.lastIndexOf(')');
      const tops = new Set();
      if (open >= 0 && close > open) {
        // a Range over the text from "(" to ")": the lines its boxes are on
        const walker = document.createTreeWalker(li, NodeFilter.SHOW_TEXT);
        const range = document.createRange();
        let offset = 0;
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          const end = offset + node.data.length;
          if (open >= offset && open < end) {
            range.setStart(node, open - offset);
          }
          if (close >= offset && close < end) {
            range.setEnd(node, close - offset + 1);
          }
          offset = end;
        }
        for (const r of range.getClientRects()) {
          if (r.width > 0) {
            tops.add(Math.round(r.top));
          }
        }
      }
      const cut = [li, ...li.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 0.5);
      return { text, lines: tops.size, cut, title: li.getAttribute('title') || '' };
    })
  );
  check(names.some(n => n.lines > 0), `the tree has kernel names with parentheses (${names.length} names)`);
  for (const n of names) {
    log(`kernel "${n.text}": its parentheses on ${n.lines} line(s), cut: ${n.cut}, title "${n.title}"`);
    check(n.lines <= 1, `"${n.text}" does not break inside its parentheses (${n.lines} lines)`);
    check(!n.cut || n.title.includes(n.text), `"${n.text}", cut short, has the whole name in its title`);
  }
}

async function flow(page) {
  // Every width the panel measures, counted by text: a path's first fit measures the whole path.
  await page.addInitScript(() => {
    const counts = (window.layenvMeasured = {});
    const measure = CanvasRenderingContext2D.prototype.measureText;
    CanvasRenderingContext2D.prototype.measureText = function (text) {
      counts[text] = (counts[text] || 0) + 1;
      return measure.call(this, text);
    };
  });
  const created = await createLayer(ENV_NAME, BASE_ID);
  check(created.status === 202, `the layer with a long name is being created (${created.status})`);
  try {
    await openLab(page);
    const sidebar = await openSidebar(page);
    await sidebar.getByRole('button', { name: 'Refresh environments' }).click();
    const row = sidebar.locator(`li.jp-LayenvEnv[data-env-id="${ENV_ID}"]`);
    await row.waitFor();
    await row.scrollIntoViewIfNeeded();
    await screenshot(page, 'long-name');
    await checkRow(row, 'the narrowest sidebar');
    const listed = (await api('GET', 'environments')).body.environments;
    for (const name of ['myexp_env', 'proj_uv']) {
      const env = listed.find(e => e.name === name);
      check(env !== undefined, `the home tree has ${name}`);
      const short = sidebar.locator(`li.jp-LayenvEnv[data-env-id="${env.id}"]`);
      await short.scrollIntoViewIfNeeded();
      await checkShortRow(short, name);
    }
    await screenshot(page, 'short-names');
    const cut = await checkPaths(sidebar.locator('section[aria-label="Conda environments and their layers"]'), 'tree');
    check(cut > 0, `the narrowest sidebar cuts some paths short (${cut})`);
    await checkKernelNames(sidebar);
    // the long layer's path: its name too wide for the line alone, its start and its end shown
    const longPath = await row.locator(':scope > .jp-LayenvPath').evaluate(e => e.textContent.replace(/\u200e/g, ''));
    check(/^…\/spectro.*….*_v2$/.test(longPath), `the long layer's path shows its name's start and end: "${longPath}"`);
    const storage = sidebar.locator('section[aria-label="Storage"]');
    const before = await page.evaluate(() => ({ ...window.layenvMeasured }));
    await storage.getByRole('button', { name: 'Storage' }).click();
    await storage.locator('ul[aria-label="Storage by place"] li').first().waitFor();
    await page.waitForTimeout(500); // the resize observers' first reports
    const fits = await page.evaluate(
      ([places, then]) => places.map(p => [p, (window.layenvMeasured[p] || 0) - (then[p] || 0)]),
      [await storage.locator('ul[aria-label="Storage by place"] .jp-LayenvPath').evaluateAll(es => es.map(e => e.title)), before]
    );
    log(`fits of the places' paths as Storage opens: ${JSON.stringify(fits)}`);
    for (const [place, count] of fits) {
      check(count === 1, `${place} is fitted to its line once as it appears, not ${count} times`);
    }
    await checkPaths(storage.locator('ul[aria-label="Storage by place"]'), 'Storage');
    await screenshot(page, 'storage');
    // the filter: Storage lists the environments the tree shows, and says so
    await sidebar.getByLabel('Filter environments').fill(ENV_NAME);
    const treePaths = await sidebar
      .locator('li.jp-LayenvEnv')
      .evaluateAll(rows => rows.map(r => r.getAttribute('data-env-path')));
    const largest = storage.locator('ul[aria-label="Largest environments"] li');
    await largest.first().waitFor();
    const storagePaths = await largest.evaluateAll(rows => rows.map(r => r.getAttribute('data-env-path')));
    const total = await storage.locator('.jp-LayenvStorage-total').innerText();
    log(`filtered: tree ${JSON.stringify(treePaths)}, Storage ${JSON.stringify(storagePaths)}, "${total}"`);
    check(storagePaths.includes(listed.find(e => e.id === ENV_ID).path), 'Storage lists the filtered layer');
    check(storagePaths.every(p => treePaths.includes(p)), 'Storage lists only the environments the tree shows');
    check(/ of \d+ environments/.test(total) && /filter/.test(total), `Storage says it follows the filter: "${total}"`);
    await checkPaths(storage.locator('ul[aria-label="Storage by place"]'), 'Storage, filtered');
    // each place says how many of its environments the filter shows, as the total does
    const placeLines = await storage.locator('ul[aria-label="Storage by place"] .jp-LayenvStorage-line').allInnerTexts();
    log(`filtered places: ${JSON.stringify(placeLines)}`);
    check(placeLines.length > 0, 'Storage lists the place of the filtered layer');
    for (const line of placeLines) {
      check(/ in \d+ of \d+ environments?\b/.test(line), `a filtered place counts what the filter shows: "${line}"`);
    }
    await screenshot(page, 'storage-filtered');
  } finally {
    const deleted = await api('DELETE', `environments/${ENV_ID}`);
    log(`deleted the layer: ${deleted.status}`);
  }
}

run(flow, { log, screenshot });
