/**
 * Notebooks saved under nb_conda_kernels open on their env's kernel.
 *
 * Their metadata names `conda-env-NAME-py`; the server starts such a name, but JupyterLab's SessionContext only
 * matches names listed in /api/kernelspecs and would show its "Select Kernel" dialog. Before a notebook's session
 * starts, a saved name that is not listed is sent to GET layenv/kernel-names/NAME, and the session's kernel
 * preference becomes the listed kernel it answers. The notebook's file is not changed (only a save writes the
 * kernel it runs).
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ISessionContext } from '@jupyterlab/apputils';

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
): Promise<void> {
  const name = session.kernelPreference.name;
  if (!name || session.kernelPreference.canStart === false) {
    return;
  }
  await session.specsManager.ready;
  const listed = session.specsManager.specs?.kernelspecs ?? {};
  if (name in listed) {
    return;
  }
  const kernel = await resolve(name).catch(() => null);
  if (kernel && kernel in listed) {
    session.kernelPreference = { ...session.kernelPreference, name: kernel };
  }
}

/**
 * Make the session resolve its saved kernel name first whenever it is initialized. The document's context sets
 * the preference from the notebook's metadata and calls initialize() right after, in one step: wrapping
 * initialize is the one point in between.
 */
export function resolveBeforeStart(
  session: IPreferringSession,
  resolve: KernelNameResolver
): void {
  const initialize = session.initialize.bind(session);
  session.initialize = async () => {
    await preferListedKernel(session, resolve);
    return initialize();
  };
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
        resolveBeforeStart(widget.context.sessionContext, resolve);
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
