/**
 * The "New environment" panel: the create form, then the job's progress (bar, step, live log, cancel) and,
 * once it succeeded, "Open a notebook with it". Shown for a job id alone when a job is reopened.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import * as React from 'react';

import { ICreateBody, LayenvApiError } from './api';
import { CodeText, plainText } from './codetext';
import {
  closestBases,
  fileInherits,
  fileModeField,
  IClosestBase,
  unmetText
} from './envfile';
import {
  baseLabel,
  baseOptions,
  basesHelp as makeBasesHelp,
  createRefusal,
  CreateField,
  defaultBase,
  defaultRoot,
  errorMessage,
  existingEnv,
  fieldForError,
  IBasesHelp,
  IEnvironment,
  IJob,
  isFinal,
  jobDoing,
  limitsHelp,
  nameTakenMessage,
  packagesHelp,
  parsePackageLines,
  percent,
  rootChoices,
  rootHelp,
  rootLabel,
  validateName
} from './model';
import { PathLine } from './lines';
import { JobError, ProgressBar } from './progress';
import { LayenvStore } from './store';

export interface ICreateActions {
  /** Pick a requirements.txt or an environment.yml from the file browser: its name and text, or null. */
  pickFile(kind: PickedFile): Promise<ITextFile | null>;
  openNotebook(kernelName: string): void;
  /** Called when a job starts from this panel (to retitle the tab). */
  started(job: IJob): void;
}

export type PickedFile = 'requirements.txt' | 'environment.yml';

export interface ITextFile {
  name: string;
  text: string;
}

/**
 * What the form held when it started a job: "Edit and try again" after a failed or cancelled create brings it
 * back (a typo in one package name should not mean typing everything again).
 */
interface IFormDraft {
  mode: CreateMode;
  name: string;
  root: string;
  base: string;
  inherit: boolean;
  packages: string;
  reqFile: ITextFile | null;
  envFile: ITextFile | null;
  displayName: string;
}

export class CreateEnvWidget extends ReactWidget {
  constructor(
    readonly store: LayenvStore,
    readonly actions: ICreateActions,
    jobId: string | null = null
  ) {
    super();
    this.addClass('jp-LayenvCreate');
    this.jobId = jobId;
    this.store.changed.connect(this.update, this);
    if (jobId) {
      this.store.follow(jobId);
    }
    if (!this.store.listing) {
      void this.store.refresh();
    }
  }

  jobId: string | null;
  /** The form as it was submitted in this tab (none for a job opened from the sidebar). */
  private _draft: IFormDraft | null = null;

  dispose(): void {
    this.store.changed.disconnect(this.update, this);
    super.dispose();
  }

  setJob(job: IJob, draft: IFormDraft | null = null): void {
    this.jobId = job.id;
    this._draft = draft;
    this.store.addJob(job);
    this.actions.started(job);
    this.update();
  }

  render(): JSX.Element {
    if (this.jobId) {
      return (
        <ProgressView
          store={this.store}
          jobId={this.jobId}
          actions={this.actions}
          onAnother={keep => {
            this.jobId = null;
            if (!keep) {
              this._draft = null;
            }
            this.title.label = 'New environment';
            this.update();
          }}
          canEdit={this._draft !== null}
        />
      );
    }
    return (
      <CreateForm
        store={this.store}
        actions={this.actions}
        draft={this._draft}
        onStarted={(job, draft) => this.setJob(job, draft)}
      />
    );
  }
}

// ------------------------------------------------------------------------------------------------ the form

interface IFormProps {
  store: LayenvStore;
  actions: ICreateActions;
  /** The values to start from (after "Edit and try again"), else an empty form. */
  draft: IFormDraft | null;
  onStarted(job: IJob, draft: IFormDraft): void;
}

type Errors = Partial<Record<CreateField, string>>;

let formCount = 0;

function CreateForm({
  store,
  actions,
  draft,
  onStarted
}: IFormProps): JSX.Element {
  const policy = store.policy;
  const options = baseOptions(store.listing?.environments ?? []);
  const bases = options.filter(o => !o.refused).map(o => o.env);
  const roots = rootChoices(policy);
  const refused = createRefusal(policy);
  const [name, setName] = React.useState(draft?.name ?? '');
  const [touched, setTouched] = React.useState(false);
  const [root, setRoot] = React.useState(draft?.root ?? '');
  const [base, setBase] = React.useState(draft?.base ?? '');
  const [inherit, setInherit] = React.useState(draft?.inherit ?? true);
  const [packages, setPackages] = React.useState(draft?.packages ?? '');
  const [reqFile, setReqFile] = React.useState<ITextFile | null>(
    draft?.reqFile ?? null
  );
  // "From environment.yml": the file's Conda part picks the base, its pip section is the packages.
  const [mode, setMode] = React.useState<CreateMode>(draft?.mode ?? 'layer');
  const fromFile = mode === 'file';
  // "A Conda base": a Conda env solved and installed by the server (py-rattler), from its configured channels.
  const conda = mode === 'conda';
  const condaPolicy = policy?.conda;
  const [envFile, setEnvFile] = React.useState<ITextFile | null>(
    draft?.envFile ?? null
  );
  const [closest, setClosest] = React.useState<IClosestBase[]>([]);
  const [displayName, setDisplayName] = React.useState(
    draft?.displayName ?? ''
  );
  const [serverErrors, setServerErrors] = React.useState<Errors>({});
  const [submitting, setSubmitting] = React.useState(false);
  // Ids unique per form: two New environment tabs may be open, and labels must find their own field.
  const uid = React.useMemo(() => `jp-layenv-${++formCount}`, []);
  const nameRef = React.useRef<HTMLInputElement>(null);
  const uploadRef = React.useRef<HTMLInputElement>(null);
  const envUploadRef = React.useRef<HTMLInputElement>(null);
  const refs: Record<string, React.RefObject<HTMLElement>> = {
    name: nameRef,
    root: React.useRef<HTMLSelectElement>(null),
    base: React.useRef<HTMLSelectElement>(null),
    packages: React.useRef<HTMLTextAreaElement>(null),
    requirements: React.useRef<HTMLButtonElement>(null),
    environment_yml: React.useRef<HTMLButtonElement>(null),
    display_name: React.useRef<HTMLInputElement>(null),
    inherit: React.useRef<HTMLInputElement>(null)
  };

  const selectedBase =
    (bases.some(b => b.id === base) && base) || defaultBase(bases)?.id || '';
  const baseEnv: IEnvironment | undefined = bases.find(
    b => b.id === selectedBase
  );
  const selectedRoot =
    roots.find(r => r.id === root && r.can_create) ?? defaultRoot(roots);
  const refusedRoots = roots.filter(r => !r.can_create && r.refused);
  const basesHelp = makeBasesHelp(options);
  const pkgHelp = packagesHelp(policy);
  const limits = limitsHelp(policy);
  // From a file, an empty name means the file's `name:`.
  const taken = existingEnv(name, store.listing?.environments ?? [], [
    selectedRoot?.path,
    fromFile ? undefined : baseEnv?.path
  ]);
  const nameError =
    fromFile && !name
      ? null
      : (validateName(name) ?? (taken ? nameTakenMessage(taken) : null));
  const createDisabled =
    submitting ||
    !!refused ||
    (fromFile ? !envFile : conda ? !!condaPolicy?.refused : !bases.length) ||
    (roots.length > 0 && !selectedRoot) ||
    (touched && !!nameError);
  const createDescribedBy = [
    refused ? `${uid}-refused` : '',
    limits.length ? `${uid}-limits` : ''
  ]
    .filter(Boolean)
    .join(' ');
  const errors: Errors = { ...serverErrors };
  if (touched && nameError) {
    errors.name = nameError;
  }

  React.useEffect(() => nameRef.current?.focus(), []);

  /** The look and state of a field's input when it has an error. */
  const inputProps = (field: CreateField) => ({
    className: `jp-LayenvInput${errors[field] ? ' jp-mod-invalid' : ''}`,
    'aria-invalid': errors[field] ? true : undefined
  });

  const clearServerError = (field: CreateField) => {
    if (serverErrors[field] || serverErrors.form) {
      const next = { ...serverErrors };
      delete next[field];
      delete next.form;
      setServerErrors(next);
    }
    if (field === 'environment_yml') {
      setClosest([]);
    }
  };

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setTouched(true);
    const ready = fromFile ? !!envFile : conda || !!selectedBase;
    if (nameError || !ready || submitting || refused) {
      if (nameError) {
        nameRef.current?.focus();
      }
      return;
    }
    const body: ICreateBody = fromFile
      ? { environment_yml: envFile?.text ?? '', inherit }
      : conda
        ? { kind: 'conda', name }
        : { name, base: selectedBase, inherit };
    if (fromFile && name) {
      body.name = name;
    }
    if (selectedRoot) {
      // Only with a policy (a server without GET policy does not take `root` either).
      body.root = selectedRoot.id;
    }
    const specs = parsePackageLines(packages);
    if (!fromFile && specs.length) {
      body.packages = specs;
    }
    if (!fromFile && !conda && reqFile) {
      body.requirements = reqFile.text;
    }
    if (!conda && displayName.trim()) {
      body.display_name = displayName.trim();
    }
    setSubmitting(true);
    try {
      const job = await store.api.createEnvironment(body);
      onStarted(job, {
        mode,
        name,
        root: selectedRoot?.id ?? root,
        base: selectedBase,
        inherit,
        packages,
        reqFile,
        envFile,
        displayName
      });
    } catch (error) {
      const apiError =
        error instanceof LayenvApiError
          ? error
          : new LayenvApiError(0, errorMessage(error), 'network');
      const field = fromFile
        ? fileModeField(apiError)
        : fieldForError(apiError);
      setServerErrors({ [field]: apiError.message });
      setClosest(fromFile ? closestBases(apiError.details) : []);
      setSubmitting(false);
      const target = refs[field]?.current;
      target?.focus();
    }
  };

  const upload = async (files: FileList | null, kind: PickedFile) => {
    const file = files?.[0];
    if (file) {
      chosen({ name: file.name, text: await file.text() }, kind);
    }
  };

  const pick = async (kind: PickedFile) => {
    const picked = await actions.pickFile(kind);
    if (picked) {
      chosen(picked, kind);
    }
  };

  const chosen = (file: ITextFile | null, kind: PickedFile) => {
    if (kind === 'environment.yml') {
      setEnvFile(file);
      if (file) {
        // a file saying inherit: false makes a layer without inherit (the server honours it): the form says so
        setInherit(fileInherits(file.text));
      }
      clearServerError('environment_yml');
    } else {
      setReqFile(file);
      clearServerError('requirements');
    }
  };

  const defaultDisplay = fromFile
    ? `Python (the file's base ▸ ${name || 'name'})`
    : baseEnv?.python_version
      ? `Python ${baseEnv.python_version.split('.').slice(0, 2).join('.')} (${baseEnv.name} ▸ ${name || 'name'})`
      : 'Python (base ▸ name)';

  return (
    <form
      className="jp-LayenvForm"
      onSubmit={submit}
      noValidate
      aria-labelledby={`${uid}-title`}
    >
      <h2 id={`${uid}-title`}>New environment</h2>
      <p className="jp-LayenvForm-intro">
        {conda
          ? 'A Conda environment, solved and installed by the server with py-rattler (no conda needed): a base to build layers on. It becomes a kernel as soon as it is made.'
          : 'A virtualenv layered on a Conda environment: it uses the base\'s Python and, with "inherit", its packages (NumPy, PyTorch…), and adds its own. It becomes a kernel as soon as it is made.'}
      </p>
      {refused && (
        <div
          className="jp-LayenvError jp-LayenvRefused"
          id={`${uid}-refused`}
          role="alert"
        >
          <CodeText text={refused} />
        </div>
      )}
      {errors.form && (
        <div className="jp-LayenvError" role="alert">
          <CodeText text={errors.form} />
        </div>
      )}

      <fieldset className="jp-LayenvField jp-LayenvModes">
        <legend>Start from</legend>
        {(
          [
            ['layer', 'A layer on a base'],
            ['file', 'An environment.yml'],
            ['conda', 'A Conda base']
          ] as const
        ).map(([value, label]) => (
          <label key={label}>
            <input
              type="radio"
              name={`${uid}-mode`}
              checked={mode === value}
              onChange={() => {
                setMode(value);
                setServerErrors({});
                setClosest([]);
              }}
            />
            {label}
          </label>
        ))}
      </fieldset>

      <div className="jp-LayenvField">
        <label htmlFor={`${uid}-name`}>Name</label>
        <input
          id={`${uid}-name`}
          ref={nameRef}
          {...inputProps('name')}
          value={name}
          autoComplete="off"
          spellCheck={false}
          placeholder={fromFile ? "the file's name:" : 'myexp_env'}
          aria-describedby={`${uid}-name-help ${uid}-name-error`}
          onChange={e => {
            setName(e.target.value);
            setTouched(true);
            clearServerError('name');
          }}
        />
        <FieldError id={`${uid}-name-error`} text={errors.name} />
        <div id={`${uid}-name-help`} className="jp-LayenvHelp">
          1–64 letters, digits, '.', '_' or '-', starting with a letter or
          digit.
          {fromFile && ' Leave it empty to use the name in the file.'}
        </div>
      </div>

      {roots.length > 0 && (
        <div className="jp-LayenvField">
          <label htmlFor={`${uid}-root`}>Where</label>
          <select
            id={`${uid}-root`}
            ref={refs.root as React.RefObject<HTMLSelectElement>}
            {...inputProps('root')}
            value={selectedRoot?.id ?? ''}
            disabled={!selectedRoot}
            aria-describedby={`${uid}-root-error ${uid}-root-help`}
            onChange={e => {
              setRoot(e.target.value);
              clearServerError('root');
            }}
          >
            {!selectedRoot && <option value="">Nowhere allowed</option>}
            {roots.map(r => (
              <option
                key={r.id}
                value={r.id}
                disabled={!r.can_create}
                title={r.refused ?? undefined}
              >
                {conda && r.id === 'user' && condaPolicy?.envs_dir
                  ? `Your Conda environments — ${condaPolicy.envs_dir}`
                  : rootLabel(r)}
              </option>
            ))}
          </select>
          <FieldError id={`${uid}-root-error`} text={errors.root} />
          <div id={`${uid}-root-help`} className="jp-LayenvHelp">
            {rootHelp(selectedRoot)}
            {refusedRoots.length > 0 && (
              <ul className="jp-LayenvHelp-list">
                {refusedRoots.map(r => (
                  <li key={r.id}>
                    {rootLabel(r, false)}: {r.refused}
                  </li>
                ))}
              </ul>
            )}
          </div>
        </div>
      )}

      {fromFile ? (
        <EnvFileField
          uid={uid}
          file={envFile}
          error={errors.environment_yml}
          closest={closest}
          pickRef={refs.environment_yml as React.RefObject<HTMLButtonElement>}
          uploadRef={envUploadRef}
          onPick={() => void pick('environment.yml')}
          onUpload={files => void upload(files, 'environment.yml')}
          onRemove={() => chosen(null, 'environment.yml')}
        />
      ) : conda ? (
        <CondaHelp
          uid={uid}
          refused={condaPolicy?.refused ?? null}
          channels={condaPolicy?.channels ?? []}
          envsDir={condaPolicy?.envs_dir ?? ''}
        />
      ) : (
        <div className="jp-LayenvField">
          <label htmlFor={`${uid}-base`}>Base</label>
          {bases.length ? (
            <select
              id={`${uid}-base`}
              ref={refs.base as React.RefObject<HTMLSelectElement>}
              {...inputProps('base')}
              value={selectedBase}
              aria-describedby={`${uid}-base-error${basesHelp ? ` ${uid}-base-help` : ''}`}
              onChange={e => {
                setBase(e.target.value);
                clearServerError('base');
              }}
            >
              {options.map(({ env: b, refused: why }) => (
                <option
                  key={b.id}
                  value={b.id}
                  disabled={!!why}
                  title={why ? plainText(why) : undefined}
                >
                  {why ? `${baseLabel(b)} — not allowed` : baseLabel(b)}
                </option>
              ))}
            </select>
          ) : (
            <div className="jp-LayenvError" id={`${uid}-base`}>
              {store.loading ? (
                'Looking for Conda environments…'
              ) : basesHelp ? (
                <BasesHelpText help={basesHelp} />
              ) : condaPolicy?.can_create ? (
                <>
                  No Conda environment found to build on. Create a first base
                  here: the server installs it, no conda needed.{' '}
                  <button
                    type="button"
                    className="jp-LayenvButton jp-mod-small"
                    onClick={() => {
                      setMode('conda');
                      setServerErrors({});
                      if (!packages.trim()) {
                        setPackages((condaPolicy.first_base ?? []).join('\n'));
                      }
                    }}
                  >
                    Create a first base…
                  </button>
                </>
              ) : (
                'No Conda environment found to build on. Install Miniconda/Miniforge, or ask your administrator which bases are configured.'
              )}
            </div>
          )}
          <FieldError id={`${uid}-base-error`} text={errors.base} />
          {bases.length > 0 && basesHelp && (
            <div id={`${uid}-base-help`} className="jp-LayenvHelp">
              <BasesHelpText help={basesHelp} />
            </div>
          )}
        </div>
      )}

      {!conda && (
        <div className="jp-LayenvField jp-mod-checkbox">
          <input
            id={`${uid}-inherit`}
            type="checkbox"
            ref={refs.inherit as React.RefObject<HTMLInputElement>}
            checked={inherit}
            aria-describedby={`${uid}-inherit-help`}
            onChange={e => {
              setInherit(e.target.checked);
              clearServerError('inherit');
            }}
          />
          <label htmlFor={`${uid}-inherit`}>Inherit the base's packages</label>
          <div id={`${uid}-inherit-help`} className="jp-LayenvHelp">
            Uses the base's site-packages (--system-site-packages): nothing is
            copied; packages of the same name in this environment take
            precedence.
          </div>
          <FieldError id={`${uid}-inherit-error`} text={errors.inherit} />
        </div>
      )}

      {!fromFile && (
        <>
          <div className="jp-LayenvField">
            <label htmlFor={`${uid}-packages`}>
              {conda
                ? 'Conda packages (one match spec per line)'
                : 'Packages (one per line)'}
            </label>
            <textarea
              id={`${uid}-packages`}
              ref={refs.packages as React.RefObject<HTMLTextAreaElement>}
              {...inputProps('packages')}
              rows={5}
              spellCheck={false}
              placeholder={
                conda ? 'python=3.11\nnumpy>=1.26' : 'flask==3.0.3\nrequests>=2'
              }
              value={packages}
              aria-describedby={`${uid}-packages-error ${uid}-packages-help`}
              onChange={e => {
                setPackages(e.target.value);
                clearServerError('packages');
              }}
            />
            <FieldError id={`${uid}-packages-error`} text={errors.packages} />
            <div id={`${uid}-packages-help`} className="jp-LayenvHelp">
              {conda ? (
                <div>
                  Conda match specs, like python=3.11 or numpy&gt;=1.26;
                  ipykernel is added so the environment is a kernel at once.
                </div>
              ) : (
                pkgHelp.map((line, i) => <div key={i}>{line}</div>)
              )}
            </div>
          </div>

          {!conda && (
            <div className="jp-LayenvField">
              <span className="jp-LayenvLabel" id={`${uid}-req-label`}>
                Or a requirements.txt
              </span>
              <div
                className="jp-LayenvField-buttons"
                role="group"
                aria-labelledby={`${uid}-req-label`}
              >
                <button
                  type="button"
                  ref={refs.requirements as React.RefObject<HTMLButtonElement>}
                  className="jp-LayenvButton"
                  onClick={() => void pick('requirements.txt')}
                >
                  Pick from the file browser…
                </button>
                <button
                  type="button"
                  className="jp-LayenvButton"
                  onClick={() => uploadRef.current?.click()}
                >
                  Upload…
                </button>
                <input
                  ref={uploadRef}
                  type="file"
                  accept=".txt,text/plain"
                  className="jp-LayenvHidden"
                  aria-label="Upload a requirements.txt"
                  tabIndex={-1}
                  onChange={e =>
                    void upload(e.target.files, 'requirements.txt')
                  }
                />
              </div>
              {reqFile && (
                <div className="jp-LayenvReqFile">
                  <span>
                    {reqFile.name} ({parsePackageLines(reqFile.text).length}{' '}
                    requirements)
                  </span>
                  <button
                    type="button"
                    className="jp-LayenvButton jp-mod-small"
                    aria-label={`Remove ${reqFile.name}`}
                    onClick={() => chosen(null, 'requirements.txt')}
                  >
                    Remove
                  </button>
                </div>
              )}
              <FieldError
                id={`${uid}-requirements-error`}
                text={errors.requirements}
              />
            </div>
          )}
        </>
      )}

      {!conda && (
        <div className="jp-LayenvField">
          <label htmlFor={`${uid}-display`}>
            Kernel display name (optional)
          </label>
          <input
            id={`${uid}-display`}
            ref={refs.display_name as React.RefObject<HTMLInputElement>}
            {...inputProps('display_name')}
            value={displayName}
            placeholder={defaultDisplay}
            aria-describedby={`${uid}-display-error`}
            onChange={e => {
              setDisplayName(e.target.value);
              clearServerError('display_name');
            }}
          />
          <FieldError id={`${uid}-display-error`} text={errors.display_name} />
        </div>
      )}

      <div className="jp-LayenvForm-submit">
        <button
          type="submit"
          className="jp-LayenvButton jp-mod-accept"
          disabled={createDisabled}
          aria-describedby={createDescribedBy || undefined}
        >
          {submitting ? 'Starting…' : 'Create'}
        </button>
        {limits.length > 0 && (
          <div id={`${uid}-limits`} className="jp-LayenvHelp">
            {limits.map((line, i) => (
              <div key={i}>{line}</div>
            ))}
          </div>
        )}
      </div>
    </form>
  );
}

type CreateMode = 'layer' | 'file' | 'conda';

interface ICondaHelpProps {
  uid: string;
  refused: string | null;
  channels: string[];
  envsDir: string;
}

/** Where a new Conda base goes and where its packages come from (the server's configuration), or why not. */
function CondaHelp(props: ICondaHelpProps): JSX.Element {
  const { uid, refused, channels, envsDir } = props;
  return (
    <div className="jp-LayenvField" id={`${uid}-conda`}>
      {refused ? (
        <div className="jp-LayenvError" role="alert">
          <CodeText text={refused} />
        </div>
      ) : (
        <div className="jp-LayenvHelp">
          Into {envsDir || 'your Conda envs dir'} (or the group root chosen
          above), from the channels{' '}
          {channels.join(', ') || 'configured on the server'} (set by the
          server&apos;s configuration).
        </div>
      )}
    </div>
  );
}

interface IEnvFileFieldProps {
  uid: string;
  file: ITextFile | null;
  error?: string;
  closest: IClosestBase[];
  pickRef: React.RefObject<HTMLButtonElement>;
  uploadRef: React.RefObject<HTMLInputElement>;
  onPick(): void;
  onUpload(files: FileList | null): void;
  onRemove(): void;
}

const NO_BASE_FITS =
  'No Conda environment here has all the Conda dependencies of this file. Create such a base, or loosen these ' +
  'specs in the file:';

/** The environment.yml to rebuild from and, when no base fits it, what the closest bases lack. */
function EnvFileField(props: IEnvFileFieldProps): JSX.Element {
  const { uid, file, error, closest } = props;
  return (
    <div className="jp-LayenvField">
      <span className="jp-LayenvLabel" id={`${uid}-envfile-label`}>
        environment.yml
      </span>
      <div
        className="jp-LayenvField-buttons"
        role="group"
        aria-labelledby={`${uid}-envfile-label`}
        aria-describedby={`${uid}-envfile-error ${uid}-envfile-help`}
      >
        <button
          type="button"
          ref={props.pickRef}
          className="jp-LayenvButton"
          onClick={props.onPick}
        >
          Pick from the file browser…
        </button>
        <button
          type="button"
          className="jp-LayenvButton"
          onClick={() => props.uploadRef.current?.click()}
        >
          Upload…
        </button>
        <input
          ref={props.uploadRef}
          type="file"
          accept=".yml,.yaml"
          className="jp-LayenvHidden"
          aria-label="Upload an environment.yml"
          tabIndex={-1}
          onChange={e => props.onUpload(e.target.files)}
        />
      </div>
      {file && (
        <div className="jp-LayenvReqFile">
          <span>{file.name}</span>
          <button
            type="button"
            className="jp-LayenvButton jp-mod-small"
            aria-label={`Remove ${file.name}`}
            onClick={props.onRemove}
          >
            Remove
          </button>
        </div>
      )}
      <FieldError
        id={`${uid}-envfile-error`}
        text={closest.length ? NO_BASE_FITS : error}
      />
      {closest.length > 0 && (
        <ul className="jp-LayenvHelp-list jp-LayenvClosest">
          {closest.map(base => (
            <li key={base.id}>
              <strong>{base.id}</strong> lacks{' '}
              {base.unmet.map(unmetText).join(', ')}
            </li>
          ))}
        </ul>
      )}
      <div id={`${uid}-envfile-help`} className="jp-LayenvHelp">
        Its Conda dependencies choose the base: the closest Conda environment
        here that has them all. Its pip section becomes this environment's
        packages. Nothing is downloaded for the Conda part.
      </div>
    </div>
  );
}

/** Why bases are refused, in the server's words (its `layer_blocked_reason`, naming the rule). */
function BasesHelpText({ help }: { help: IBasesHelp }): JSX.Element {
  return (
    <>
      {help.summary}
      <ul className="jp-LayenvHelp-list">
        {help.reasons.map((reason, i) => (
          <li key={i}>
            <CodeText text={reason} />
          </li>
        ))}
        {help.more && <li>{help.more}</li>}
      </ul>
    </>
  );
}

function FieldError({ id, text }: { id: string; text?: string }): JSX.Element {
  return (
    <div
      id={id}
      className="jp-LayenvFieldError"
      role={text ? 'alert' : undefined}
    >
      <CodeText text={text ?? ''} />
    </div>
  );
}

// ------------------------------------------------------------------------------------------------ progress

interface IProgressProps {
  store: LayenvStore;
  jobId: string;
  actions: ICreateActions;
  /** Back to the form: with the values this tab submitted (`keep`), or empty. */
  onAnother(keep: boolean): void;
  /** This tab started the job: its form's values can come back. */
  canEdit: boolean;
}

/** A job's view: its state, progress, log, cancel; what to do next once it ended (exported for its tests). */
export function ProgressView({
  store,
  jobId,
  actions,
  onAnother,
  canEdit
}: IProgressProps): JSX.Element {
  const job = store.job(jobId);
  const log = store.logs.get(jobId) ?? '';
  const logRef = React.useRef<HTMLPreElement>(null);
  const [cancelling, setCancelling] = React.useState(false);
  const [cancelError, setCancelError] = React.useState<string | null>(null);
  const stick = React.useRef(true);
  const followError = store.followErrors.get(jobId);

  React.useEffect(() => {
    const el = logRef.current;
    if (el && stick.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [log]);

  if (!job) {
    return (
      <div className="jp-LayenvProgressView">
        <p>{followError ?? `Loading job ${jobId}…`}</p>
      </div>
    );
  }
  const pct = percent(job);
  const final = isFinal(job);
  const kernel = job.environment?.kernels?.[0];
  // a layer's package change or restore (opened from the sidebar's Jobs): no new kernel, no new environment
  const creates = !job.action || job.action === 'create';
  const name = job.name ?? '';
  const deleted =
    !!job.environment && store.deletedEnvs.has(job.environment.id);
  // the server's step of a queued job is "queued", as its state: say what it waits for
  const step =
    job.state === 'queued' ? 'waiting for other jobs to finish' : job.step;

  return (
    <div className={`jp-LayenvProgressView jp-mod-${job.state}`}>
      <h2>
        {final
          ? job.state === 'succeeded'
            ? creates
              ? `Environment ${name} is ready`
              : job.action === 'restore'
                ? `${name} is restored`
                : `The packages of ${name} changed`
            : job.state === 'cancelled'
              ? `${jobDoing(job, '')} was cancelled`
              : `${jobDoing(job, '')} failed`
          : `${jobDoing(job)}…`}
      </h2>
      {job.path && <PathLine path={job.path} className="jp-mod-ltr" />}
      <ProgressBar
        pct={pct}
        label="Progress"
        valueText={pct === null ? step : `${pct} %: ${step}`}
      />
      <div className="jp-LayenvProgress-status" aria-live="polite">
        {pct !== null && <span className="jp-LayenvProgress-pct">{pct} %</span>}{' '}
        <span className="jp-LayenvProgress-step">{step}</span>
        <span className="jp-LayenvBadge">{job.state}</span>
      </div>
      {followError && !final && (
        <div className="jp-LayenvHelp">
          Reconnecting… (<CodeText text={followError} />)
        </div>
      )}
      {job.error && <JobError error={job.error} />}
      {job.state === 'succeeded' && !creates && (
        <div className="jp-LayenvSuccess">
          <span>Restart the kernels using {name} to use the new packages.</span>
        </div>
      )}
      {job.state === 'succeeded' && creates && deleted && (
        <div className="jp-LayenvHelp">{name} was deleted since.</div>
      )}
      {job.state === 'succeeded' && creates && !deleted && (
        <div className="jp-LayenvSuccess">
          {kernel ? (
            <>
              <span>
                New kernel: <strong>{kernel.display_name}</strong>
              </span>
              <button
                className="jp-LayenvButton jp-mod-accept"
                onClick={() => actions.openNotebook(kernel.name)}
                autoFocus
              >
                Open a notebook with it
              </button>
            </>
          ) : (
            <span>
              <CodeText
                text={
                  job.environment?.skipped_reason ??
                  'The environment is ready, but it is not a kernel.'
                }
              />
            </span>
          )}
        </div>
      )}
      <div className="jp-LayenvProgress-buttons">
        {!final && (
          <button
            className="jp-LayenvButton jp-mod-danger"
            disabled={cancelling}
            onClick={async () => {
              setCancelling(true);
              setCancelError(null);
              try {
                await store.cancel(jobId);
              } catch (error) {
                setCancelError(errorMessage(error));
                setCancelling(false);
              }
            }}
          >
            {cancelling ? 'Cancelling…' : 'Cancel'}
          </button>
        )}
        {final && creates && (
          <>
            {canEdit && job.state !== 'succeeded' && (
              <button
                className="jp-LayenvButton jp-mod-accept"
                onClick={() => onAnother(true)}
              >
                Edit and try again
              </button>
            )}
            <button
              className="jp-LayenvButton"
              onClick={() => onAnother(false)}
            >
              Create another environment
            </button>
          </>
        )}
      </div>
      {cancelError && (
        <div className="jp-LayenvError" role="alert">
          <CodeText text={cancelError} />
        </div>
      )}
      <details className="jp-LayenvLog" open>
        <summary>Log</summary>
        <pre
          ref={logRef}
          tabIndex={0}
          aria-label="Install log"
          onScroll={e => {
            const el = e.currentTarget;
            stick.current =
              el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
          }}
        >
          {log || (final ? '(empty log)' : 'Waiting for output…')}
        </pre>
      </details>
    </div>
  );
}
