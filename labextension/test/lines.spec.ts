import { describe, expect, it } from 'vitest';

import { parenthesisedParts } from '../src/lines';

describe("parenthesisedParts: a kernel name's parentheses stay whole", () => {
  it('sets the parenthesised part apart, its words together', () => {
    expect(parenthesisedParts('Python 3.11 (py311_ai ▸ pkgs_ui)')).toEqual([
      { text: 'Python 3.11 ', paren: false },
      { text: '(py311_ai ▸ pkgs_ui)', paren: true }
    ]);
  });

  it('takes every parenthesised part, and text after one', () => {
    expect(parenthesisedParts('R (4.3) on base (layer: foo) extra')).toEqual([
      { text: 'R ', paren: false },
      { text: '(4.3)', paren: true },
      { text: ' on base ', paren: false },
      { text: '(layer: foo)', paren: true },
      { text: ' extra', paren: false }
    ]);
  });

  it('leaves a name without a closed pair as it is', () => {
    expect(parenthesisedParts('Python 3')).toEqual([
      { text: 'Python 3', paren: false }
    ]);
    expect(parenthesisedParts('odd (name')).toEqual([
      { text: 'odd (name', paren: false }
    ]);
    expect(parenthesisedParts('')).toEqual([]);
  });
});
