/**
 * Notebooks saved under nb_conda_kernels open on their env's kernel.
 *
 * Their metadata names `conda-env-NAME-py`; the server starts such a name, but JupyterLab's SessionContext only
 * matches names listed in /api/kernelspecs and would show its "Select Kernel" dialog. Before a notebook's session
 * starts, a saved name that is not listed is sent to GET layenv/kernel-names/NAME, and the session's kernel
 * preference becomes the listed kernel it answers. The notebook's file is not changed: once the kernel runs,
 * JupyterLab writes its name into the metadata, which made the notebook dirty and autosave rewrote a colleague's
 * file just by opening it; that rewrite is put back while it is the only change (an edited notebook's save writes
 * the kernel it runs).
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ISessionContext } from '@jupyterlab/apputils';
import { JSONExt, JSONObject, JSONValue } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

// Eager on purpose: index.ts loads ./api at start anyway, and the first notebook may open as the app starts.
// eslint-disable-next-line jupyter/prefer-lazy-imports
import { LayenvAPI } from './api';

/** The listed kernel a saved name starts, or null (none, or the server could not say). */
export type KernelNameResolver = (name: string) => Promise<string | null>;

/** The part of a SessionContext this needs (a fake in the unit tests). */
export type IPreferringSession = Pick<
  ISessionContext,
  'kernelPreference' | 'specsManager' | 'initialize'
>;

/**
 * Set the session's preferred kernel to the listed kernel its saved name starts, when that name is not listed.
 * A listed name, no name, or a name the server does not resolve leave the preference as it is (JupyterLab then
 * asks, as before).
 */
export async function preferListedKernel(
  session: IPreferringSession,
  resolve: KernelNameResolver
): Promise<string | null> {
  const name = session.kernelPreference.name;
  if (!name || session.kernelPreference.canStart === false) {
    return null;
  }
  await session.specsManager.ready;
  const listed = session.specsManager.specs?.kernelspecs ?? {};
  if (name in listed) {
    return null;
  }
  const kernel = await resolve(name).catch(() => null);
  if (kernel && kernel in listed) {
    session.kernelPreference = { ...session.kernelPreference, name: kernel };
    return kernel;
  }
  return null;
}

/**
 * Make the session resolve its saved kernel name first whenever it is initialized. The document's context sets
 * the preference from the notebook's metadata and calls initialize() right after, in one step: wrapping
 * initialize is the one point in between.
 */
export function resolveBeforeStart(
  session: IPreferringSession,
  resolve: KernelNameResolver,
  resolved: (kernel: string) => void = () => undefined
): void {
  const initialize = session.initialize.bind(session);
  session.initialize = async () => {
    const kernel = await preferListedKernel(session, resolve);
    if (kernel) {
      resolved(kernel);
    }
    return initialize();
  };
}

/** A metadata change of a notebook model (IMapChange's fields this needs). */
export interface IMetadataChange {
  key: string;
  newValue?: unknown;
}

/** The part of a notebook model this needs (a fake in the unit tests). */
export interface IKernelspecModel {
  dirty: boolean;
  readonly isDisposed?: boolean;
  readonly metadataChanged: ISignal<unknown, IMetadataChange>;
  getMetadata(key: string): unknown;
  setMetadata(key: string, value: unknown): void;
  toJSON(): unknown;
}

/**
 * Keep a notebook opened with a resolved kernel name as its file is. Once `kernel` runs, JupyterLab writes
 * `{name: kernel, …}` as its kernelspec (again at each restart), which marks it dirty, so autosave would rewrite
 * the file. While that rewrite is the only difference from the notebook as loaded, the saved kernelspec is put
 * back and the notebook is clean again; edited first, or another kernel picked, it is left as JupyterLab has it.
 */
export function keepSavedKernelspec(
  model: IKernelspecModel,
  kernel: string
): void {
  const saved = model.getMetadata('kernelspec') as JSONObject | undefined;
  if (!saved || model.dirty) {
    return;
  }
  const loaded = JSONExt.deepCopy(model.toJSON() as JSONValue);
  model.metadataChanged.connect((_, change) => {
    const now = change.newValue as { name?: unknown } | undefined;
    if (change.key !== 'kernelspec' || now?.name !== kernel) {
      return;
    }
    // after JupyterLab's own handling of this change (it marks the notebook dirty)
    setTimeout(() => {
      if (model.isDisposed) {
        return; // closed meanwhile
      }
      const current = model.toJSON() as { metadata?: JSONObject };
      const unchanged = JSONExt.deepEqual(
        {
          ...current,
          metadata: { ...current.metadata, kernelspec: saved }
        } as JSONValue,
        loaded
      );
      if (unchanged) {
        model.setMetadata('kernelspec', JSONExt.deepCopy(saved));
        model.dirty = false;
      }
    }, 0);
  });
}

/** A resolver asking the server; a refusal (404: no such kernel) or a failed call is "none". */
function serverResolver(api: LayenvAPI): KernelNameResolver {
  return async name => {
    try {
      return (await api.resolveKernelName(name)).kernel;
    } catch (error) {
      console.debug(`layenv: kernel name ${name} not resolved:`, error);
      return null;
    }
  };
}

const NOTEBOOK_FACTORY = 'Notebook';

export const kernelNamesPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter_layenv:kernel-names',
  description:
    'Notebooks saved under nb_conda_kernels (conda-env-NAME-py) start their env kernel, with no kernel dialog.',
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    const resolve = serverResolver(new LayenvAPI());
    const registry = app.docRegistry;
    let hooked = false;
    const hook = () => {
      const factory = registry.getWidgetFactory(NOTEBOOK_FACTORY);
      if (!factory || hooked) {
        return;
      }
      hooked = true;
      // Emitted when the widget is made, before the document manager initializes its context.
      factory.widgetCreated.connect((_, widget) => {
        const { context } = widget;
        resolveBeforeStart(context.sessionContext, resolve, kernel => {
          const model = context.model as unknown as Partial<IKernelspecModel>;
          if (model.metadataChanged && model.getMetadata) {
            keepSavedKernelspec(model as IKernelspecModel, kernel);
          }
        });
      });
    };
    hook();
    registry.changed.connect((_, change) => {
      if (change.type === 'widgetFactory' && change.change === 'added') {
        hook();
      }
    });
  }
};
