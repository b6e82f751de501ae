import { describe, expect, it } from 'vitest';

import { ISessionContext } from '@jupyterlab/apputils';
import { JSONExt, JSONValue } from '@lumino/coreutils';
import { Signal } from '@lumino/signaling';

import {
  IMetadataChange,
  IPreferringSession,
  keepSavedKernelspec,
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

/** A notebook model as loaded from a file saved with `saved`: metadata, dirty flag, and its change signal. */
function notebook(saved: { name: string; display_name: string }) {
  const metadata: Record<string, unknown> = {
    kernelspec: { ...saved, language: 'python' },
    language_info: { name: 'python', version: '3.11.9' }
  };
  const cells = [{ cell_type: 'code', source: 'print(1)' }];
  const changed = new Signal<unknown, IMetadataChange>({});
  const model = {
    dirty: false,
    metadataChanged: changed,
    getMetadata: (key: string) => metadata[key],
    // as JupyterLab's: an equal value is no change; any other change marks the notebook dirty
    setMetadata: (key: string, value: unknown) => {
      if (JSONExt.deepEqual(metadata[key] as JSONValue, value as JSONValue)) {
        return;
      }
      metadata[key] = value;
      model.dirty = true;
      changed.emit({ key, newValue: value });
    },
    editCell: (source: string) => {
      cells[0].source = source;
      model.dirty = true;
    },
    toJSON: () => ({ cells, metadata }) as unknown as JSONValue
  };
  return model;
}

/** What NotebookPanel does once a kernel runs: the metadata names the kernel it runs. */
function kernelStarted(model: ReturnType<typeof notebook>, name: string) {
  model.setMetadata('kernelspec', {
    name,
    display_name: 'Python 3.11 (py311_ai)',
    language: 'python'
  });
}

const SAVED = {
  name: 'conda-env-py311_ai-py',
  display_name: 'Python [conda env:py311_ai]'
};

describe('keepSavedKernelspec: opening a notebook does not change it', () => {
  it("puts the saved kernelspec back after the kernel's rewrite: not dirty, nothing for autosave", async () => {
    const model = notebook(SAVED);
    keepSavedKernelspec(model, 'conda-py311_ai-py');
    kernelStarted(model, 'conda-py311_ai-py');
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(model.getMetadata('kernelspec')).toEqual({
      ...SAVED,
      language: 'python'
    });
    expect(model.dirty).toBe(false);
    // a restart rewrites it again: put back again
    kernelStarted(model, 'conda-py311_ai-py');
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(model.getMetadata('kernelspec')).toMatchObject(SAVED);
    expect(model.dirty).toBe(false);
  });

  it('leaves an edited notebook as JupyterLab has it (its save writes the kernel it runs)', async () => {
    const model = notebook(SAVED);
    keepSavedKernelspec(model, 'conda-py311_ai-py');
    model.editCell('print(2)');
    kernelStarted(model, 'conda-py311_ai-py');
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(model.getMetadata('kernelspec')).toMatchObject({
      name: 'conda-py311_ai-py'
    });
    expect(model.dirty).toBe(true);
  });

  it('leaves another change of the kernel (the user picked one) as it is', async () => {
    const model = notebook(SAVED);
    keepSavedKernelspec(model, 'conda-py311_ai-py');
    kernelStarted(model, 'conda-base-py');
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(model.getMetadata('kernelspec')).toMatchObject({
      name: 'conda-base-py'
    });
    expect(model.dirty).toBe(true);
  });
});
