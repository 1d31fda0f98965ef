// deploy/ is installed on real hosts as it is: every systemd unit must load (systemd-analyze
// verify: known directives, valid values, commands that exist), run up.sh in the role its name
// says and stop the way the kit stops; every example env file may name only variables the kit
// knows, and, its placeholders filled, be accepted by the kit as the role it is written for.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseEnv } from 'node:util';
import { loadKitConfig, OPTIONS } from '../../scripts/kit/config.ts';
import { SUPERVISOR } from '../../scripts/kit/parts.ts';
import { ROOT } from '../../services/node/config.ts';

/** Where the units expect the checkout (deploy/README.md). */
const INSTALL = '/opt/socketio-kit';
const DEPLOY = join(ROOT, 'deploy');
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const UNITS = readdirSync(join(DEPLOY, 'systemd')).filter((f) => f.endsWith('.service'));
const KIT_UNITS = {
  'socketio-kit.service': 'all',
  'socketio-kit-nodes.service': 'nodes',
  'socketio-kit-balancer.service': 'balancer',
} as const;

type Unit = Record<string, Record<string, string[]>>;

/** A unit file's sections and settings (a key set twice keeps both values, as systemd reads them). */
function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section: Record<string, string[]> | undefined;
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      const name = header[1] as string;
      section = unit[name] ?? {};
      unit[name] = section;
      continue;
    }
    const at = line.indexOf('=');
    assert.ok(section && at > 0, `not a setting in a section: ${line}`);
    const key = line.slice(0, at).trim();
    section[key] = [...(section[key] ?? []), line.slice(at + 1).trim()];
  }
  return unit;
}

const readUnit = (name: string) => readFileSync(join(DEPLOY, 'systemd', name), 'utf8');
const setting = (unit: Unit, section: string, key: string) => unit[section]?.[key]?.at(-1);

/** systemd's time span (`60s`, `2min`, `90`) in seconds. */
function seconds(span: string): number {
  const units: Record<string, number> = { '': 1, s: 1, sec: 1, m: 60, min: 60, h: 3600 };
  const match = /^(\d+)\s*([a-z]*)$/.exec(span);
  assert.ok(match && (match[2] as string) in units, `unexpected time span ${span}`);
  return Number(match[1]) * (units[match[2] as string] as number);
}

/**
 * Copies the units into `dir` as they would be installed from this checkout: the install path
 * becomes the checkout (verify checks that every command exists), and every EnvironmentFile
 * names an empty file there.
 */
function stageUnits(dir: string, patch: (name: string, text: string) => string = (_, t) => t) {
  for (const name of UNITS) {
    let text = readUnit(name).replaceAll(INSTALL, ROOT);
    text = text.replace(/^EnvironmentFile=(-?)(.+)$/gm, (_, optional: string, path: string) => {
      const staged = join(dir, 'env', basename(path));
      mkdirSync(join(dir, 'env'), { recursive: true });
      writeFileSync(staged, '');
      return `EnvironmentFile=${optional}${staged}`;
    });
    writeFileSync(join(dir, name), patch(name, text));
  }
}

/** What systemd-analyze verify says about the staged units (a template as instance 7001). */
function verify(dir: string): { status: number | null; problems: string[] } {
  const targets = UNITS.map((n) =>
    join(dir, n.endsWith('@.service') ? n.replace('@', '@7001') : n),
  );
  const run = spawnSync(SYSTEMD_ANALYZE, ['verify', '--man=no', ...targets], {
    encoding: 'utf8',
    env: { ...process.env, SYSTEMD_LOG_COLOR: '0' },
    timeout: 30_000,
  });
  const ours = [...UNITS.map((n) => n.replace('@.service', '@')), dir];
  const problems = `${run.stdout}\n${run.stderr}`
    .split('\n')
    .filter((line) => ours.some((name) => line.includes(name)));
  return { status: run.status, problems };
}

describe('the systemd units in deploy/systemd', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'kit-units-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));
  let round = 0;
  const stage = (patch?: (name: string, text: string) => string) => {
    const dir = join(scratch, String(round++));
    mkdirSync(dir);
    stageUnits(dir, patch);
    return dir;
  };

  it('load in systemd without a warning', () => {
    assert.ok(
      existsSync(SYSTEMD_ANALYZE),
      `${SYSTEMD_ANALYZE} is missing: apt-get install systemd`,
    );
    for (const unit of [...Object.keys(KIT_UNITS), 'socketio-kit-redis@.service']) {
      assert.ok(UNITS.includes(unit), `deploy/systemd/${unit} is missing`);
    }
    const { status, problems } = verify(stage());
    assert.deepEqual(problems, []);
    assert.equal(status, 0);
  });

  it('would be caught broken: a misspelt value and a command that does not exist', () => {
    const typo = verify(
      stage((name, text) =>
        name === 'socketio-kit-nodes.service'
          ? text.replace(/^KillMode=mixed$/m, 'KillMode=mixd')
          : text,
      ),
    );
    assert.ok(
      typo.problems.some((l) => /socketio-kit-nodes\.service.*kill mode/i.test(l)),
      typo.problems.join('\n'),
    );
    const missing = verify(
      stage((name, text) =>
        name === 'socketio-kit-balancer.service'
          ? text.replace(/^ExecStart=(.*)\/up\.sh/m, 'ExecStart=$1/upp.sh')
          : text,
      ),
    );
    assert.notEqual(missing.status, 0);
    assert.ok(
      missing.problems.some((l) => l.includes('upp.sh')),
      missing.problems.join('\n'),
    );
  });

  for (const [name, role] of Object.entries(KIT_UNITS)) {
    it(`${name} runs up.sh --role ${role} in the foreground and lets it stop the kit`, () => {
      const unit = parseUnit(readUnit(name));
      assert.deepEqual(unit.Service?.ExecStart, [`${INSTALL}/scripts/up.sh --role ${role}`]);
      assert.equal(setting(unit, 'Service', 'WorkingDirectory'), INSTALL);
      assert.match(setting(unit, 'Service', 'Type') ?? 'simple', /^(exec|simple)$/);
      // The kit drops to its own user itself; nginx's master must stay root.
      assert.equal(setting(unit, 'Service', 'User'), undefined);
      assert.equal(setting(unit, 'Service', 'KillSignal'), 'SIGTERM');
      // SIGTERM to up.sh alone; it stops its children in order.
      assert.equal(setting(unit, 'Service', 'KillMode'), 'mixed');
      const stopSec = seconds(setting(unit, 'Service', 'TimeoutStopSec') ?? '90s');
      assert.ok(stopSec > SUPERVISOR.graceMs / 1000, `TimeoutStopSec ${stopSec}s`);
      assert.equal(setting(unit, 'Service', 'Restart'), 'on-failure');
      assert.ok(Number(setting(unit, 'Service', 'LimitNOFILE')) >= 20_000);
      // V8 writes the code it compiles into executable memory.
      assert.notEqual(setting(unit, 'Service', 'MemoryDenyWriteExecute'), 'yes');
      assert.deepEqual(unit.Unit?.After, ['network-online.target']);
      if (role !== 'all') {
        assert.deepEqual(unit.Service?.EnvironmentFile, [`/etc/socketio-kit/${role}.env`]);
      }
    });
  }

  it('socketio-kit-redis@ runs one redis-server per port with the data folder its config names', () => {
    const unit = parseUnit(readUnit('socketio-kit-redis@.service'));
    const exec = setting(unit, 'Service', 'ExecStart') ?? '';
    assert.match(exec, /^\/usr\/bin\/redis-server \/etc\/socketio-kit\/redis-%i\.conf /);
    assert.match(exec, /--supervised systemd/);
    assert.equal(setting(unit, 'Service', 'Type'), 'notify');
    const conf = readFileSync(join(DEPLOY, 'redis/redis-cluster.conf.example'), 'utf8');
    const port = /^port (\d+)$/m.exec(conf)?.[1] as string;
    const state = setting(unit, 'Service', 'StateDirectory')?.replace('%i', port);
    assert.equal(/^dir (.+)$/m.exec(conf)?.[1], `/var/lib/${state}`);
    for (const directive of ['cluster-enabled yes', 'appendonly yes', 'protected-mode yes']) {
      assert.match(conf, new RegExp(`^${directive}$`, 'm'));
    }
    assert.match(conf, new RegExp(`^cluster-config-file nodes-${port}\\.conf$`, 'm'));
  });
});

describe('the example env files in deploy/', () => {
  const files = [
    join(DEPLOY, 'env.example'),
    ...readdirSync(join(DEPLOY, 'hosts')).flatMap((host) =>
      readdirSync(join(DEPLOY, 'hosts', host)).map((f) => join(DEPLOY, 'hosts', host, f)),
    ),
  ];
  const hostFiles = files.filter((f) => f.endsWith('.env'));
  const read = (file: string) => parseEnv(readFileSync(file, 'utf8')) as Record<string, string>;
  /** The example with its placeholders filled, as an operator would; TLS files exist only there. */
  const filled = (file: string) => {
    const secret = randomBytes(24).toString('hex');
    const {
      TLS_CERT: _cert,
      TLS_KEY: _key,
      ...env
    } = parseEnv(readFileSync(file, 'utf8').replace(/change-me[\w-]*/g, secret)) as Record<
      string,
      string
    >;
    return env;
  };

  it('name only variables the kit knows (scripts/kit/config.ts OPTIONS)', () => {
    assert.ok(hostFiles.length >= 5, `host env files: ${hostFiles.join(', ')}`);
    for (const file of files) {
      const named = [...readFileSync(file, 'utf8').matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map(
        (m) => m[1] as string,
      );
      const unknown = named.filter((name) => !(name in OPTIONS));
      assert.deepEqual(unknown, [], `${file} names variables config.ts does not know`);
    }
  });

  it('env.example names every variable (the README sends operators there for the full list)', () => {
    const text = readFileSync(join(DEPLOY, 'env.example'), 'utf8');
    const missing = Object.keys(OPTIONS).filter(
      (name) => !new RegExp(`^#? ?${name}=`, 'm').test(text),
    );
    assert.deepEqual(missing, []);
  });

  it('are accepted by the kit, filled in, as the role each is for; copied as they are, refused', () => {
    for (const file of hostFiles) {
      const role = basename(file, '.env');
      const config = loadKitConfig(filled(file), ROOT);
      assert.equal(config.role, role, file);
      assert.equal(config.runDir, `/var/lib/socketio-kit/${role}`, file);
      if (role === 'nodes') {
        assert.throws(() => loadKitConfig(read(file), ROOT), /EMIT_TOKEN/, file);
      }
    }
  });

  it('agree across hosts: one UPSTREAMS order, one cluster and token, every node and balancer', () => {
    const byRole = (role: string) =>
      hostFiles
        .filter((f) => basename(f) === `${role}.env`)
        .map((f) => ({ host: basename(join(f, '..')), env: read(f) }));
    const nodes = byRole('nodes');
    const balancers = byRole('balancer');
    assert.ok(nodes.length >= 3 && balancers.length >= 2);
    const upstreams = new Set(balancers.map((b) => b.env.UPSTREAMS));
    assert.equal(upstreams.size, 1, 'every balancer lists the same UPSTREAMS in the same order');
    const listed = [...upstreams][0]?.split(',') ?? [];
    for (const key of ['REDIS_CLUSTER', 'EMIT_TOKEN', 'NODE_PORTS']) {
      assert.equal(new Set(nodes.map((n) => n.env[key])).size, 1, `${key} differs between hosts`);
    }
    for (const { env } of nodes) {
      for (const port of (env.NODE_PORTS ?? '').split(',')) {
        assert.ok(listed.includes(`${env.NODE_HOST}:${port}`), `${env.NODE_HOST}:${port}`);
      }
      for (const balancer of balancers) {
        const address = nodes.find((n) => n.host === balancer.host)?.env.NODE_HOST;
        assert.ok(address && env.BALANCERS?.split(',').includes(address), `${balancer.host}`);
      }
    }
  });
});
