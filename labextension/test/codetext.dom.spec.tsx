// @vitest-environment happy-dom
/** Server messages with `code spans`: shown as code, never as backticks, never parsed as HTML. */
import * as React from 'react';
import { act } from 'react';
import { createRoot } from 'react-dom/client';
import { describe, expect, it } from 'vitest';

import { codeParts, CodeText, plainText } from '../src/codetext';

(
  globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }
).IS_REACT_ACT_ENVIRONMENT = true;

function render(element: JSX.Element): HTMLElement {
  const host = document.createElement('div');
  act(() => createRoot(host).render(element));
  return host;
}

describe('codeParts: the code spans of a server message', () => {
  it('splits text and each `…` span, backticks dropped', () => {
    expect(
      codeParts(
        'no ipykernel: run `python -m pip install ipykernel` or `jupyter layenv doctor`.'
      )
    ).toEqual([
      { text: 'no ipykernel: run ', code: false },
      { text: 'python -m pip install ipykernel', code: true },
      { text: ' or ', code: false },
      { text: 'jupyter layenv doctor', code: true },
      { text: '.', code: false }
    ]);
  });

  it('leaves a lone backtick, and a message without any, as text', () => {
    expect(codeParts("it's `odd")).toEqual([
      { text: "it's `odd", code: false }
    ]);
    expect(codeParts('plain')).toEqual([{ text: 'plain', code: false }]);
    expect(codeParts('')).toEqual([]);
  });

  it('plainText drops the backticks of the spans only', () => {
    expect(plainText('run `a b` now, `c`; a `lone one')).toBe(
      'run a b now, c; a `lone one'
    );
  });
});

describe('CodeText', () => {
  it('renders code spans as <code>, with no backtick left', () => {
    const host = render(
      <CodeText text="recreate it, e.g. `python -m venv --clear` with its interpreter" />
    );
    const code = host.querySelectorAll('code');
    expect(code.length).toBe(1);
    expect(code[0].textContent).toBe('python -m venv --clear');
    expect(host.textContent).toBe(
      'recreate it, e.g. python -m venv --clear with its interpreter'
    );
    expect(host.textContent).not.toContain('`');
  });

  it('shows markup in a message as text, never as HTML', () => {
    const host = render(
      <CodeText text={'<img src=x onerror="alert(1)"> and `<b>bold</b>`'} />
    );
    expect(host.querySelector('img')).toBeNull();
    expect(host.querySelector('b')).toBeNull();
    expect(host.querySelector('code')?.textContent).toBe('<b>bold</b>');
    expect(host.textContent).toContain('<img src=x onerror="alert(1)">');
  });
});
