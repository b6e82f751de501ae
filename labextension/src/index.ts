import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  MainAreaWidget,
  showDialog,
  showErrorMessage,
  WidgetTracker
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { FileDialog, IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

// Eager on purpose (jupyter/prefer-lazy-imports): the sidebar, its store and the API are built in activate(), and
// they load ./model anyway; the create and packages panels are opened synchronously by commands the layout
// restorer replays at start, so an await import() there would make restoring them asynchronous.
/* eslint-disable jupyter/prefer-lazy-imports */
import { downloadText, LayenvAPI } from './api';
import { codeBody } from './codetext';
import { CreateEnvWidget } from './create';
import { ENV_FILE_PATTERN } from './envfile';
import { layenvIcon } from './icons';
import { kernelNamesPlugin } from './kernelnames';
import { errorMessage, IEnvironment, jobDoing } from './model';
import { PackagesWidget } from './packages';
import { EnvironmentsSidebar } from './sidebar';
import { LayenvStore } from './store';
/* eslint-enable jupyter/prefer-lazy-imports */

const PLUGIN_ID = 'jupyter_layenv:plugin';
const NO_ARGS = { args: { type: 'object' as const, properties: {} } };

export namespace CommandIDs {
  export const create = 'layenv:create';
  export const showJob = 'layenv:show-job';
  export const openSidebar = 'layenv:open-sidebar';
  export const refresh = 'layenv:refresh';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Environments sidebar: layered Conda + virtualenv environments, created, exported and deleted.',
  autoStart: true,
  optional: [
    ILauncher,
    ICommandPalette,
    ILayoutRestorer,
    ISettingRegistry,
    IDocumentManager,
    IDefaultFileBrowser
  ],
  activate: (
    app: JupyterFrontEnd,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    docManager: IDocumentManager | null,
    defaultBrowser: IDefaultFileBrowser | null
  ) => {
    const api = new LayenvAPI();
    const store = new LayenvStore(api, async () => {
      // The new env's kernel appears in the launcher and the kernel picker at once.
      await app.serviceManager.kernelspecs.refreshSpecs();
    });
    const tracker = new WidgetTracker<MainAreaWidget<CreateEnvWidget>>({
      namespace: 'layenv-create'
    });

    const openNotebook = (kernelName: string) => {
      void app.commands.execute('notebook:create-new', {
        kernelName,
        cwd: defaultBrowser?.model.path ?? ''
      });
    };

    const openPanel = (
      jobId: string | null
    ): MainAreaWidget<CreateEnvWidget> => {
      if (jobId) {
        const open = tracker.find(w => w.content.jobId === jobId);
        if (open) {
          app.shell.activateById(open.id);
          return open;
        }
      }
      const content = new CreateEnvWidget(
        store,
        {
          pickFile: async kind => {
            if (!docManager) {
              void showErrorMessage(
                'No file browser',
                `Upload the ${kind} instead.`
              );
              return null;
            }
            const pattern =
              kind === 'environment.yml' ? ENV_FILE_PATTERN : /\.(txt|in)$/i;
            const result = await FileDialog.getOpenFiles({
              manager: docManager,
              title: `Pick a ${kind}`,
              filter: model =>
                model.type === 'directory' || pattern.test(model.name)
                  ? {}
                  : null
            });
            const file = result.button.accept
              ? result.value?.find(m => m.type !== 'directory')
              : undefined;
            if (!file) {
              return null;
            }
            const model = await app.serviceManager.contents.get(file.path, {
              content: true,
              format: 'text'
            });
            return {
              name: PathExt.basename(file.path),
              text: String(model.content ?? '')
            };
          },
          openNotebook,
          started: job => {
            widget.title.label = `Creating ${job.name ?? 'environment'}`;
            void tracker.save(widget);
          }
        },
        jobId
      );
      const widget = new MainAreaWidget({ content });
      widget.id = `jupyter-layenv-create-${Date.now()}`;
      widget.title.label = jobId ? `Environment job` : 'New environment';
      widget.title.icon = layenvIcon;
      widget.title.closable = true;
      const retitle = () => {
        const job = content.jobId ? store.job(content.jobId) : undefined;
        if (job?.name) {
          const creates = !job.action || job.action === 'create';
          const ended =
            job.state === 'failed' || job.state === 'cancelled'
              ? ` (${job.state})`
              : job.state === 'succeeded'
                ? ' (done)'
                : '';
          widget.title.label =
            job.state === 'succeeded' && creates
              ? `Environment ${job.name}`
              : `${jobDoing(job)}${ended}`;
        }
      };
      store.changed.connect(retitle);
      widget.disposed.connect(() => store.changed.disconnect(retitle));
      void tracker.add(widget);
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
      return widget;
    };

    const packagesId = (env: IEnvironment) =>
      `jupyter-layenv-packages-${env.id}`;

    const sidebar = new EnvironmentsSidebar(store, {
      create: blocked => {
        if (blocked) {
          void explain('New environments cannot be created here', blocked);
        } else {
          void app.commands.execute(CommandIDs.create);
        }
      },
      showJob: jobId =>
        void app.commands.execute(CommandIDs.showJob, { jobId }),
      newNotebook: openNotebook,
      exportEnv: env => void exportEnv(api, env),
      // The kernelspecs are reloaded only after a delete was done (not when it was explained, cancelled or refused).
      deleteEnv: (env, blocked) =>
        void deleteEnv(store, env, blocked, async () => {
          // its Packages tab would offer changes and restores of an env that is gone
          Array.from(app.shell.widgets('main'))
            .find(w => w.id === packagesId(env))
            ?.dispose();
          sidebar.focusAfterDelete();
          await app.serviceManager.kernelspecs.refreshSpecs();
        }),
      packages: env => {
        const id = packagesId(env);
        const open = Array.from(app.shell.widgets('main')).find(
          w => w.id === id
        );
        if (open) {
          app.shell.activateById(id);
          return;
        }
        // The store follows its jobs (the sidebar lists them); one that succeeded reloads the kernelspecs and the
        // listing, as a create does.
        const content = new PackagesWidget(store, env);
        const widget = new MainAreaWidget({ content });
        widget.id = id;
        widget.title.label = `Packages of ${env.name}`;
        widget.title.icon = layenvIcon;
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
      }
    });
    app.shell.add(sidebar, 'left', { rank: 350 });
    // A kernel started or shut down here changes which envs may be deleted (the listing says why not): the rows
    // follow, once the kernels settle, instead of offering a Delete the server refuses, or refusing one it would
    // allow. Only the listing is read again (a hidden sidebar reads everything when it is shown).
    app.serviceManager.kernels.runningChanged.connect(() => {
      if (sidebar.isVisible) {
        store.kernelsChanged();
      }
    });
    if (restorer) {
      restorer.add(sidebar, 'jupyter-layenv-sidebar');
      void restorer.restore(tracker, {
        command: CommandIDs.showJob,
        args: widget => ({ jobId: widget.content.jobId }),
        name: widget => widget.content.jobId ?? 'new'
      });
    }

    app.commands.addCommand(CommandIDs.create, {
      label: args =>
        args['isPalette']
          ? 'New Environment (layered on a Conda base)'
          : 'New environment',
      caption:
        'Create a virtualenv layered on a Conda environment, with its own kernel',
      icon: args => (args['isPalette'] ? undefined : layenvIcon),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            isPalette: {
              type: 'boolean',
              description: 'Label it for the command palette'
            }
          }
        }
      },
      execute: () => openPanel(null)
    });
    app.commands.addCommand(CommandIDs.showJob, {
      label: 'Show an environment job',
      describedBy: {
        args: {
          type: 'object',
          properties: {
            jobId: {
              type: 'string',
              description: 'The job to follow (none: a new environment form)'
            }
          }
        }
      },
      execute: args => openPanel((args['jobId'] as string) || null)
    });
    app.commands.addCommand(CommandIDs.openSidebar, {
      label: 'Show the Environments sidebar',
      describedBy: NO_ARGS,
      execute: () => app.shell.activateById(sidebar.id)
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh the environments',
      describedBy: NO_ARGS,
      execute: () => store.refresh()
    });

    if (launcher) {
      launcher.add({ command: CommandIDs.create, category: 'Other', rank: 0 });
    }
    if (palette) {
      const category = 'Environments';
      for (const command of [
        CommandIDs.create,
        CommandIDs.openSidebar,
        CommandIDs.refresh
      ]) {
        palette.addItem({ command, category, args: { isPalette: true } });
      }
    }

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = () => {
            store.pollInterval = Math.max(
              100,
              Number(settings.get('pollInterval').composite) || 500
            );
            sidebar.showNotKernels =
              settings.get('showNotKernels').composite !== false;
            sidebar.update();
          };
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason =>
          console.warn('jupyter_layenv: settings not loaded', reason)
        );
    }

    // Find running jobs at once, so a job started before a reload is followed (and shown in the sidebar).
    void app.restored.then(() => store.refresh());
  }
};

async function exportEnv(api: LayenvAPI, env: IEnvironment): Promise<void> {
  // A Conda env can also be exported as an @EXPLICIT spec (package URLs with md5): conda or micromamba rebuild it.
  const isConda = env.kind === 'conda-env' || env.kind === 'conda-base';
  const result = await showDialog({
    title: `Export ${env.name}`,
    body: isConda
      ? 'environment.yml recreates the environment; requirements.txt lists the packages pip sees; explicit lists every Conda package by URL and md5, for conda create --file.'
      : 'environment.yml recreates the whole stack (the Conda base and this layer); requirements.txt lists the packages pip sees.',
    buttons: [
      Dialog.cancelButton(),
      ...(isConda
        ? [
            Dialog.okButton({
              label: 'explicit',
              caption: 'Download the explicit spec (@EXPLICIT)',
              ariaLabel: 'explicit'
            })
          ]
        : []),
      Dialog.okButton({
        label: 'requirements.txt',
        caption: 'Download requirements.txt',
        ariaLabel: 'requirements.txt'
      }),
      Dialog.okButton({
        label: 'environment.yml',
        caption: 'Download environment.yml',
        ariaLabel: 'environment.yml'
      })
    ]
  });
  if (!result.button.accept) {
    return;
  }
  const format =
    result.button.label === 'requirements.txt' ||
    result.button.label === 'explicit'
      ? result.button.label
      : 'environment.yml';
  try {
    const file = await api.exportEnvironment(env.id, format);
    downloadText(
      file.filename,
      file.text,
      format === 'environment.yml' ? 'text/yaml' : 'text/plain'
    );
  } catch (error) {
    void showServerError(`Export of ${env.name} failed`, errorMessage(error));
  }
}

/** Say why an action is refused (the server's reason), with only an OK button. */
async function explain(title: string, reason: string): Promise<void> {
  await showDialog({
    title,
    body: codeBody(reason),
    buttons: [Dialog.okButton({ label: 'OK' })]
  });
}

/** A refusal or failure in the server's words (its `commands` as code), with a Close button. */
async function showServerError(title: string, message: string): Promise<void> {
  await showDialog({
    title,
    body: codeBody(message),
    buttons: [Dialog.cancelButton({ label: 'Close' })]
  });
}

async function deleteEnv(
  store: LayenvStore,
  env: IEnvironment,
  blocked: string | null,
  afterDelete: () => Promise<void>
): Promise<void> {
  if (blocked) {
    return explain(`${env.name} cannot be deleted here`, blocked);
  }
  const kernels = env.kernels.map(k => k.display_name).join(', ');
  const result = await showDialog({
    title: `Delete ${env.name}?`,
    body: `This removes ${env.path}${kernels ? ` and its kernel (${kernels})` : ''}. Notebooks using it will need another kernel. This cannot be undone.`,
    buttons: [
      Dialog.cancelButton(),
      Dialog.warnButton({ label: 'Delete', ariaLabel: `Delete ${env.name}` })
    ],
    defaultButton: 0
  });
  if (!result.button.accept) {
    return;
  }
  let deleted = false;
  try {
    await store.api.deleteEnvironment(env.id);
    deleted = true;
    store.envDeleted(env.id);
  } catch (error) {
    // Refused (a kernel started meanwhile: 409): the row stays, the focus with its button, and the server's words.
    void showServerError(`Could not delete ${env.name}`, errorMessage(error));
  }
  await store.refresh();
  if (deleted) {
    await afterDelete();
  }
}

export default [plugin, kernelNamesPlugin];
