/**
 * The REST API client: every call goes through ServerConnection.makeRequest (token and XSRF handled).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  filenameFromDisposition,
  IApiError,
  ICleanReport,
  IUsage,
  IEnvironmentDetails,
  IJob,
  IJobSource,
  IKernelName,
  IListing,
  IPlan,
  IPolicy,
  IRevisions
} from './model';

/** A refusal of the API: its HTTP status, the contract's `{message, reason}` and any other fields it sent. */
export class LayenvApiError extends Error implements IApiError {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string,
    readonly details: Record<string, unknown> = {}
  ) {
    super(message);
    this.name = 'LayenvApiError';
  }
}

export interface ICreateBody {
  /** `conda`: a Conda env (a base) made from `packages` (Conda match specs) by the server with py-rattler. */
  kind?: 'conda';
  /** With `kind: conda`: add ipykernel (default true). */
  ipykernel?: boolean;
  /** Optional only with `environment_yml` (then the file's `name:` is used). */
  name?: string;
  /** Not with `environment_yml`: the file's Conda dependencies choose the base. */
  base?: string;
  /** The text of an environment.yml: its Conda part picks the base, its pip section is the layer. */
  environment_yml?: string;
  packages?: string[];
  requirements?: string;
  inherit?: boolean;
  display_name?: string;
  /** A root id from GET policy's `roots` (the server's default is `user`). */
  root?: string;
}

export interface IChangeBody {
  add?: string[];
  remove?: string[];
  force?: boolean;
}

export interface IExported {
  filename: string;
  text: string;
}

/** Call `<base_url>/layenv/<endPoint>`; JSON in, raw Response out (errors raised as LayenvApiError). */
export async function requestAPI(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<Response> {
  const url = URLExt.join(settings.baseUrl, 'layenv', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    // the browser says only "Failed to fetch" (or "NetworkError when attempting to fetch resource")
    const said = (error as Error)?.message || String(error);
    throw new ServerConnection.NetworkError(
      new TypeError(
        `the Jupyter server did not answer (${said}): is it still running, and the network up?`
      )
    );
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let reason = response.statusText;
    let details: Record<string, unknown> = {};
    try {
      const data = await response.json();
      message = data.message || message;
      reason = data.reason || reason;
      details = data && typeof data === 'object' ? data : {};
    } catch {
      if (response.status === 404) {
        message =
          'The jupyter_layenv server extension does not answer (404): is it installed and enabled in this server? ' +
          'Check `jupyter server extension list`.';
      }
    }
    throw new LayenvApiError(response.status, message, reason, details);
  }
  return response;
}

async function json<T>(endPoint: string, init: RequestInit = {}): Promise<T> {
  const response = await requestAPI(endPoint, init);
  return (await response.json()) as T;
}

const enc = encodeURIComponent;

export class LayenvAPI implements IJobSource {
  private _decoders = new Map<string, TextDecoder>();

  listEnvironments(): Promise<IListing> {
    return json<IListing>('environments');
  }

  /**
   * The listed kernel a notebook's saved kernel name starts (an nb_conda_kernels `conda-env-NAME-py`);
   * a LayenvApiError (404) when it starts none.
   */
  resolveKernelName(name: string): Promise<IKernelName> {
    return json<IKernelName>(`kernel-names/${enc(name)}`);
  }

  /** What applies to the caller: where it may create, which bases and packages, whether it may delete. */
  getPolicy(): Promise<IPolicy> {
    return json<IPolicy>('policy');
  }

  /** What the envs hold, per root and owner, largest first (never waits for a size). */
  getUsage(): Promise<IUsage> {
    return json<IUsage>('usage');
  }

  /** Remove the caller's envs unused for `unused_days` (with `dry_run`: only say what would go). */
  clean(unused_days: number, dry_run: boolean): Promise<ICleanReport> {
    return json<ICleanReport>('clean', {
      method: 'POST',
      body: JSON.stringify({ unused_days, dry_run })
    });
  }

  createEnvironment(body: ICreateBody): Promise<IJob> {
    return json<IJob>('environments', {
      method: 'POST',
      body: JSON.stringify(body)
    });
  }

  async deleteEnvironment(id: string): Promise<void> {
    await requestAPI(`environments/${enc(id)}`, { method: 'DELETE' });
  }

  async exportEnvironment(
    id: string,
    format: 'environment.yml' | 'requirements.txt' | 'explicit'
  ): Promise<IExported> {
    const response = await requestAPI(
      `environments/${enc(id)}/export?format=${enc(format)}`
    );
    const text = await response.text();
    const filename = filenameFromDisposition(
      response.headers.get('Content-Disposition'),
      `${id}-${format}`
    );
    return { filename, text };
  }

  /** One env, with its packages split into layer, inherited and shadowed (with why). */
  getEnvironment(id: string): Promise<IEnvironmentDetails> {
    return json<IEnvironmentDetails>(`environments/${enc(id)}`);
  }

  /** The plan of a change (nothing written): what goes in, what goes out, what the base keeps providing. */
  planChange(id: string, body: IChangeBody): Promise<IPlan> {
    return json<IPlan>(`environments/${enc(id)}/packages`, {
      method: 'POST',
      body: JSON.stringify({ ...body, dry_run: true })
    });
  }

  /** Carry out a change: a job (atomic: a failed one leaves the layer as it was). */
  changePackages(id: string, body: IChangeBody): Promise<IJob> {
    return json<IJob>(`environments/${enc(id)}/packages`, {
      method: 'POST',
      body: JSON.stringify({ ...body, dry_run: false })
    });
  }

  listRevisions(id: string): Promise<IRevisions> {
    return json<IRevisions>(`environments/${enc(id)}/revisions`);
  }

  restoreRevision(id: string, revision: number): Promise<IJob> {
    return json<IJob>(`environments/${enc(id)}/revisions/${revision}/restore`, {
      method: 'POST',
      body: '{}'
    });
  }

  async listJobs(): Promise<IJob[]> {
    return (await json<{ jobs: IJob[] }>('jobs')).jobs;
  }

  getJob(id: string): Promise<IJob> {
    return json<IJob>(`jobs/${enc(id)}`);
  }

  cancelJob(id: string): Promise<IJob> {
    return json<IJob>(`jobs/${enc(id)}`, { method: 'DELETE' });
  }

  /** The log from byte `offset`; multi-byte characters split between two reads are decoded whole. */
  async getLog(
    id: string,
    offset: number
  ): Promise<{ text: string; next: number }> {
    const response = await requestAPI(`jobs/${enc(id)}/log?offset=${offset}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const header = Number(response.headers.get('X-Layenv-Next-Offset'));
    const next =
      Number.isFinite(header) && header >= offset
        ? header
        : offset + bytes.byteLength;
    let decoder = this._decoders.get(id);
    if (!decoder || offset === 0) {
      decoder = new TextDecoder('utf-8');
      this._decoders.set(id, decoder);
    }
    return { text: decoder.decode(bytes, { stream: true }), next };
  }
}

/** Offer a text as a file download in the browser. */
export function downloadText(
  filename: string,
  text: string,
  type = 'text/plain'
): void {
  const blob = new Blob([text], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  setTimeout(() => {
    a.remove();
    URL.revokeObjectURL(url);
  }, 1000);
}
