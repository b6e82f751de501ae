import { describe, expect, it } from 'vitest';

import { ISessionContext } from '@jupyterlab/apputils';

import {
  IPreferringSession,
  preferListedKernel,
  resolveBeforeStart
} from '../src/kernelnames';

const LISTED = ['conda-py311_ai-py', 'conda-base-py'];

/** A session whose preference came from a notebook saved with `name`; initialize() records the preference. */
function session(
  name: string | undefined,
  listed: string[] = LISTED
): IPreferringSession & { started: (string | undefined)[] } {
  const started: (string | undefined)[] = [];
  const kernelspecs = Object.fromEntries(listed.map(n => [n, { name: n }]));
  const fake = {
    started,
    kernelPreference: {
      name,
      language: 'python'
    } as ISessionContext.IKernelPreference,
    specsManager: {
      ready: Promise.resolve(),
      specs: { default: listed[0], kernelspecs }
    } as unknown as ISessionContext['specsManager'],
    initialize: async () => {
      started.push(fake.kernelPreference.name);
      return false;
    }
  };
  return fake;
}

function resolver(table: Record<string, string>) {
  const asked: string[] = [];
  const resolve = async (name: string) => {
    asked.push(name);
    return table[name] ?? null;
  };
  return { asked, resolve };
}

describe('preferListedKernel', () => {
  it('prefers the listed kernel an nb_conda_kernels name starts', async () => {
    const s = session('conda-env-py311_ai-py');
    const { asked, resolve } = resolver({
      'conda-env-py311_ai-py': 'conda-py311_ai-py'
    });
    await preferListedKernel(s, resolve);
    expect(asked).toEqual(['conda-env-py311_ai-py']);
    expect(s.kernelPreference).toEqual({
      name: 'conda-py311_ai-py',
      language: 'python'
    });
  });

  it('does not ask about a listed name or no name', async () => {
    const { asked, resolve } = resolver({});
    const listed = session('conda-base-py');
    await preferListedKernel(listed, resolve);
    await preferListedKernel(session(undefined), resolve);
    expect(asked).toEqual([]);
    expect(listed.kernelPreference.name).toBe('conda-base-py');
  });

  it('leaves a name it cannot resolve, or an answer that is not listed, to the dialog', async () => {
    const failing = async () => {
      throw new Error('404');
    };
    const unknown = session('conda-env-gone-py');
    await preferListedKernel(unknown, failing);
    expect(unknown.kernelPreference.name).toBe('conda-env-gone-py');
    const stale = session('conda-env-x-py');
    await preferListedKernel(
      stale,
      resolver({ 'conda-env-x-py': 'not-listed' }).resolve
    );
    expect(stale.kernelPreference.name).toBe('conda-env-x-py');
  });
});

describe('resolveBeforeStart', () => {
  it('resolves the saved name before the session starts', async () => {
    const s = session('conda-env-py311_ai-py');
    resolveBeforeStart(
      s,
      resolver({ 'conda-env-py311_ai-py': 'conda-py311_ai-py' }).resolve
    );
    expect(await s.initialize()).toBe(false);
    expect(s.started).toEqual(['conda-py311_ai-py']);
  });
});
