import { describe, expect, it } from 'vitest';

import {
  baseOptions,
  basesHelp,
  createRefusal,
  defaultBase,
  defaultRoot,
  DELETE_REFUSED,
  deleteBlockedReason,
  fieldForError,
  IEnvironment,
  IPolicy,
  IPolicyRoot,
  limitsHelp,
  matchesFilter,
  MAX_BASE_REASONS,
  ownerLine,
  packagesHelp,
  rootChoices,
  rootHelp,
  rootLabel,
  scopeTitle
} from '../src/model';
import { condaBase, condaEnv, env, policy as basePolicy } from './fixtures';

const USER: IPolicyRoot = {
  id: 'user',
  scope: 'user',
  path: '/home/alice/.virtualenvs',
  group: null,
  writable: true,
  can_create: true,
  refused: null
};
const PHYSICS: IPolicyRoot = {
  id: 'group:physics',
  scope: 'group',
  path: '/srv/layenv/physics',
  group: 'physics',
  writable: true,
  can_create: true,
  refused: null
};
const CHEM: IPolicyRoot = {
  id: 'group:chem',
  scope: 'group',
  path: '/srv/layenv/chem',
  group: 'chem',
  writable: false,
  can_create: false,
  refused:
    '/srv/layenv/chem is not writable for alice (LayenvPolicy.create_in): ask an administrator of chem'
};
const SYSTEM: IPolicyRoot = {
  id: 'system:/opt/conda',
  scope: 'system',
  path: '/opt/conda',
  group: 'root',
  writable: false,
  can_create: false,
  refused: 'system roots are never written'
};

function policy(partial: Partial<IPolicy> = {}): IPolicy {
  return basePolicy({ roots: [USER, PHYSICS, CHEM, SYSTEM], ...partial });
}

const ROOT = '/opt/conda';
const condaRoot = condaBase(ROOT);
const ai = condaEnv(ROOT, 'py311_ai');
const torch = condaEnv(ROOT, 'torch');
const ENVS = [condaRoot, ai, torch];

/** The server's layer_blocked_reason for a base LayenvPolicy.allowed_bases leaves out (policy.py layer_refusal). */
function notAllowed(base: IEnvironment): string {
  return (
    `layers on ${base.id} are not allowed on this server; pick another base ` +
    '(rule LayenvPolicy.allowed_bases; ask your administrator to change it)'
  );
}

function refuse(base: IEnvironment): IEnvironment {
  return { ...base, layer_blocked_reason: notAllowed(base) };
}

describe("bases and the listing's layer_blocked_reason", () => {
  it('every base is offered when the server refuses none, or is older and sends no reason', () => {
    const allowed = ENVS.map(e => ({ ...e, layer_blocked_reason: null }));
    expect(baseOptions(allowed).map(o => [o.env.name, o.refused])).toEqual([
      ['base', null],
      ['py311_ai', null],
      ['torch', null]
    ]);
    expect(basesHelp(baseOptions(allowed))).toBeNull();
    expect(ENVS.every(e => !('layer_blocked_reason' in e))).toBe(true);
    expect(baseOptions(ENVS).every(o => o.refused === null)).toBe(true);
    expect(basesHelp(baseOptions(ENVS))).toBeNull();
  });

  it("the server's word alone decides: a base is refused only when the listing says why", () => {
    expect(
      baseOptions([condaRoot, ai, refuse(torch)]).map(o => o.refused)
    ).toEqual([null, null, notAllowed(torch)]);
    expect(
      baseOptions([condaRoot, { ...ai, layer_blocked_reason: '' }]).map(
        o => o.refused
      )
    ).toEqual([null, null]);
  });

  it("a refused base is disabled with the server's reason, listed last; the help quotes the reason", () => {
    const options = baseOptions([refuse(condaRoot), ai, torch]);
    expect(options.map(o => o.env.name)).toEqual(['py311_ai', 'torch', 'base']);
    expect(options[2].refused).toBe(notAllowed(condaRoot));
    expect(options[2].refused).toMatch(/rule LayenvPolicy\.allowed_bases/);
    const allowed = options.filter(o => !o.refused).map(o => o.env);
    expect(defaultBase(allowed)?.name).toBe('py311_ai');
    expect(basesHelp(options)).toEqual({
      summary: '1 of 3 bases may not be used (marked "not allowed"):',
      reasons: [notAllowed(condaRoot)],
      more: null
    });
  });

  it('when the server refuses every base, the help says so and lists every reason', () => {
    const none = baseOptions(ENVS.map(refuse));
    expect(none.every(o => o.refused)).toBe(true);
    const help = basesHelp(none);
    expect(help?.summary).toMatch(
      /^No base you may build on: the server refuses all 3 Conda environments found/
    );
    expect(help?.reasons).toEqual(ENVS.map(notAllowed));
    expect(help?.more).toBeNull();
  });

  it('any reason the server gives counts, not only allowed_bases', () => {
    const broken = {
      ...ai,
      layer_blocked_reason:
        "base 'conda-py311_ai' has no working Python interpreter; pick another base"
    };
    const options = baseOptions([condaRoot, broken, torch]);
    expect(options.map(o => o.env.name)).toEqual(['base', 'torch', 'py311_ai']);
    expect(basesHelp(options)?.reasons).toEqual([broken.layer_blocked_reason]);
  });

  it("under a select, many reasons are cut short: the rest are on the options' tooltips", () => {
    const many = Array.from({ length: MAX_BASE_REASONS + 3 }, (_, i) =>
      refuse(
        env({
          id: `conda-e${i}`,
          name: `e${i}`,
          path: `${ROOT}/envs/e${i}`,
          base: ROOT
        })
      )
    );
    const help = basesHelp(baseOptions([ai, ...many]));
    expect(help?.reasons).toHaveLength(MAX_BASE_REASONS);
    expect(help?.more).toBe('…and 3 more: hover a greyed-out base for why.');
    expect(help?.summary).toMatch(/^8 of 9 bases/);
  });
});

describe('roots', () => {
  it('offers the user and group roots, not the system ones; the user root first', () => {
    const roots = rootChoices(policy());
    expect(roots.map(r => r.id)).toEqual([
      'user',
      'group:physics',
      'group:chem'
    ]);
    expect(defaultRoot(roots)?.id).toBe('user');
    expect(rootChoices(null)).toEqual([]);
  });

  it('defaults to the first allowed root when the user root is refused', () => {
    const noUser = {
      ...USER,
      can_create: false,
      refused: 'LayenvPolicy.create_in does not allow "user"'
    };
    expect(defaultRoot([noUser, CHEM, PHYSICS])?.id).toBe('group:physics');
    expect(defaultRoot([noUser, CHEM])).toBeUndefined();
  });

  it('labels say whose and where', () => {
    expect(rootLabel(USER)).toBe(
      'Your environments — /home/alice/.virtualenvs'
    );
    expect(rootLabel(PHYSICS)).toBe('Group physics — /srv/layenv/physics');
    expect(rootLabel(CHEM)).toBe('Group chem — /srv/layenv/chem (not allowed)');
    expect(rootLabel(CHEM, false)).toBe('Group chem — /srv/layenv/chem');
    expect(rootLabel({ ...PHYSICS, group: null })).toMatch(/^Group physics/);
    expect(rootHelp(PHYSICS)).toMatch(
      /^Shared with the group physics: its members/
    );
    expect(rootHelp(USER)).toMatch(/only you/);
    expect(rootHelp(undefined)).toBe('');
  });
});

describe('createRefusal', () => {
  it('is the server message when the caller may not create', () => {
    expect(createRefusal(null)).toBeNull();
    expect(createRefusal(policy())).toBeNull();
    const msg =
      'you own 5 environments, the most LayenvPolicy.max_envs_per_user allows: delete one first';
    expect(
      createRefusal(policy({ can_create: false, create_refused: msg }))
    ).toBe(msg);
    expect(createRefusal(policy({ can_create: false }))).toMatch(
      /may not create/
    );
  });
});

describe('help texts', () => {
  it('packages: the rules that apply, each naming its trait', () => {
    expect(packagesHelp(null)).toHaveLength(1);
    const lines = packagesHelp(
      policy({
        packages: {
          allowed: ['numpy*', 'flask'],
          denied: ['torch'],
          direct_references: false,
          installer_options: ['--pre']
        },
        index: {
          index_url: 'https://pypi.example/simple',
          extra_index_urls: [],
          find_links: ['/srv/wheels'],
          offline: false
        }
      })
    ).join('\n');
    expect(lines).toMatch(
      /Only these packages may be installed: numpy\*, flask \(LayenvPolicy\.allowed_packages\)/
    );
    expect(lines).toMatch(
      /Never these: torch \(LayenvPolicy\.denied_packages\)/
    );
    expect(lines).toMatch(
      /No URLs or local paths \(LayenvPolicy\.allow_direct_references\)/
    );
    expect(lines).toMatch(
      /Installer options allowed, each on its own line: --pre; no others/
    );
    expect(lines).toMatch(
      /Installed from https:\/\/pypi\.example\/simple and the wheelhouse \/srv\/wheels/
    );
    const open = packagesHelp(
      policy({
        packages: {
          allowed: [],
          denied: [],
          direct_references: true,
          installer_options: []
        }
      })
    );
    expect(open.join('\n')).toMatch(/Direct references .* are allowed/);
    expect(open.join('\n')).toMatch(
      /No installer options .*LayenvPolicy\.allowed_installer_options/
    );
    expect(open.join('\n')).not.toMatch(/allowed_packages|denied_packages/);
    const offline = packagesHelp(
      policy({
        index: {
          index_url: null,
          extra_index_urls: [],
          find_links: ['/w'],
          offline: true
        }
      })
    );
    expect(offline.join('\n')).toMatch(
      /Installed offline, from the wheelhouse \/w only/
    );
  });

  it('limits: only the configured ones', () => {
    expect(limitsHelp(policy())).toEqual([]);
    expect(limitsHelp(null)).toEqual([]);
    expect(
      limitsHelp(
        policy({
          max_envs_per_user: 5,
          envs_owned: 3,
          max_jobs: 4,
          active_jobs: 1
        })
      )
    ).toEqual([
      'You have 3 of at most 5 environments (LayenvPolicy.max_envs_per_user).',
      '1 of at most 4 jobs run on this server (LayenvPolicy.max_jobs).'
    ]);
  });
});

describe('owner, group and scope in the tree', () => {
  const shared = env({
    name: 'lensing',
    path: '/srv/layenv/physics/lensing',
    kind: 'layered',
    scope: 'group',
    owner: 'alice',
    group: 'physics',
    creator: 'alice'
  });

  it('group and system envs say whose they are', () => {
    expect(ownerLine(shared)).toBe('group physics · created by alice');
    expect(ownerLine({ ...shared, creator: null, owner: 'bob' })).toBe(
      'group physics · owned by bob'
    );
    const sys = env({
      name: 'py311',
      path: '/opt/conda/envs/py311',
      scope: 'system',
      owner: 'root',
      group: 'conda'
    });
    expect(ownerLine(sys)).toBe('owned by root · group conda');
    expect(
      ownerLine(
        env({
          name: 'mine',
          path: '/home/alice/.virtualenvs/mine',
          owner: 'alice'
        })
      )
    ).toBeNull();
    // a server before the shared roots sends none of these fields
    expect(
      ownerLine(env({ name: 'old', path: '/opt/x', scope: 'system' }))
    ).toBeNull();
    expect(scopeTitle(shared)).toMatch(/members of physics/);
    expect(scopeTitle(sys)).toMatch(/never written/);
  });

  it('the filter finds envs by group, owner and creator', () => {
    expect(matchesFilter(shared, 'physics alice')).toBe(true);
    expect(matchesFilter(shared, 'bob')).toBe(false);
  });

  it('delete: refused for everything when the caller may not delete; the listing reason otherwise', () => {
    const writeRefused =
      'you may list environments but not create or delete them: ... ask your administrator';
    expect(
      deleteBlockedReason(
        shared,
        false,
        policy({ can_delete: false, create_refused: writeRefused })
      )
    ).toBe(writeRefused);
    expect(
      deleteBlockedReason(shared, false, policy({ can_delete: false }))
    ).toBe(DELETE_REFUSED);
    expect(deleteBlockedReason(shared, false, policy())).toBeNull();
    const notMember = {
      ...shared,
      delete_blocked_reason:
        'lensing is in group physics, which you are not a member of'
    };
    expect(deleteBlockedReason(notMember, false, policy())).toBe(
      notMember.delete_blocked_reason
    );
    expect(
      deleteBlockedReason(notMember, true, policy({ can_delete: false }))
    ).toMatch(/A job is working/);
  });
});

describe('fieldForError with the policy refusals', () => {
  it('puts each 403 next to the field whose rule refused it', () => {
    const e = (status: number, message: string, reason: string) =>
      fieldForError({ status, message, reason });
    expect(
      e(
        403,
        "base 'conda-torch' is not allowed by LayenvPolicy.allowed_bases",
        'allowed_bases'
      )
    ).toBe('base');
    expect(
      e(403, 'LayenvPolicy.create_in does not allow group roots', 'create_in')
    ).toBe('root');
    expect(
      e(
        400,
        "unknown root 'group:nope': use one of group:physics, user",
        'unknown root'
      )
    ).toBe('root');
    expect(
      e(
        403,
        "/opt/conda: system roots hold the administrator's bases",
        'system'
      )
    ).toBe('root');
    expect(
      e(
        403,
        '/srv/layenv/chem belongs to the group chem, which you are not a member of',
        'not a member'
      )
    ).toBe('root');
    expect(
      e(
        403,
        "/srv/layenv/chem is not writable for this server's user",
        'read-only root'
      )
    ).toBe('root');
    expect(
      e(
        403,
        "'torch' is refused by LayenvPolicy.denied_packages",
        'denied_packages'
      )
    ).toBe('packages');
    expect(
      e(
        403,
        "requirements line 2: 'torch' is refused by LayenvPolicy.denied_packages",
        'denied_packages'
      )
    ).toBe('requirements');
    expect(
      e(
        403,
        "'x' is not in LayenvPolicy.allowed_packages",
        'LayenvPolicy.allowed_packages'
      )
    ).toBe('packages');
    expect(
      e(
        403,
        'a direct reference: LayenvPolicy.allow_direct_references',
        'allow_direct_references'
      )
    ).toBe('packages');
    expect(
      e(
        403,
        "'--pre' is not in LayenvPolicy.allowed_installer_options",
        'allowed_installer_options'
      )
    ).toBe('packages');
    expect(
      e(
        403,
        'you own 5 environments: LayenvPolicy.max_envs_per_user is 5',
        'max_envs_per_user'
      )
    ).toBe('form');
    expect(e(403, '4 jobs run: LayenvPolicy.max_jobs is 4', 'max_jobs')).toBe(
      'form'
    );
  });
});
