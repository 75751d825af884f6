// `ETCDCTL_API=2 etcdctl` (the v2 keys API client shipped with etcd 3.4) against real etcd 3.4
// (--enable-v2) and against our server: the same command sequence on both, normalised outputs compared.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { etcdctl, hasEtcd, startOurServer, startRealEtcd, type EtcdctlOptions, type EtcdctlResult, type Server } from '../helpers/procs.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const skip = hasEtcd() ? false : 'etcd / etcdctl not installed (/usr/bin/etcd, /usr/bin/etcdctl)';

let real: Server;
let ours: Server;

before(async () => {
  if (skip) return;
  [real, ours] = await Promise.all([startRealEtcd({ enableV2: true }), startOurServer()]);
});
after(async () => {
  await Promise.all([real?.stop(), ours?.stop()]);
});

/** Runs `ETCDCTL_API=2 etcdctl --endpoints=http://127.0.0.1:PORT <args>`. */
function ctl2(s: Server, args: string[], opts: EtcdctlOptions = {}): Promise<EtcdctlResult> {
  return etcdctl(s.clientUrl, args, { ...opts, env: { ETCDCTL_API: '2', ...opts.env } });
}

/** Normalises v2 etcdctl output of one server: endpoint, etcd index in error texts, member IDs, TTLs. */
function norm(s: Server, text: string): string {
  let t = text;
  t = t.split(s.clientUrl).join('<CLIENT_URL>').split(s.endpoint).join('<ENDPOINT>').split(s.peerUrl).join('<PEER_URL>');
  // v2 error texts end with the etcd index: "Error:  105: Key already exists (/k) [12]"
  t = t.replace(/^(Error: .*) \[\d+\]$/gm, '$1 [<INDEX>]');
  // member IDs (v2 member list: "<hex>: name=...")
  t = t.replace(/^[0-9a-f]{1,16}:/gm, '<MEMBER_ID>:');
  // -o extended: indexes are server-specific; keep only whether Created == Modified
  t = t.replace(/^Created-Index: (\d+)\nModified-Index: (\d+)$/gm, (_m, c: string, m: string) => `Created-Index: <I>\nModified-Index: ${c === m ? '<=created>' : '<>created>'}`);
  t = t.replace(/^Index: \d+$/gm, 'Index: <INDEX>');
  // -o json: same for createdIndex / modifiedIndex
  t = t.replace(/"createdIndex":(\d+),"modifiedIndex":(\d+)/g, (_m, c: string, m: string) => `"createdIndex":<I>,"modifiedIndex":${c === m ? '<=created>' : '<>created>'}`);
  return t;
}

interface Step {
  args: string[];
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the steps in order on one server and returns normalised results. */
async function runSteps(s: Server, steps: string[][], opts: { sortStdoutOf?: number[] } = {}): Promise<Step[]> {
  const out: Step[] = [];
  for (const [i, args] of steps.entries()) {
    const r = await ctl2(s, args);
    assert.equal(r.timedOut, false, `${s.name}: etcdctl ${args.join(' ')} timed out`);
    let stdout = norm(s, r.stdout);
    // plain `ls` (no --sort) lists children in the server's map order: compare as a set
    if (opts.sortStdoutOf?.includes(i)) stdout = stdout.split('\n').filter((l) => l !== '').sort().join('\n') + '\n';
    out.push({ args, code: r.code, stdout, stderr: norm(s, r.stderr) });
  }
  return out;
}

/** Same steps on both servers; asserts each step's exit code, stdout and stderr are equal. */
async function compare(steps: string[][], opts: { sortStdoutOf?: number[] } = {}): Promise<Step[]> {
  const a = await runSteps(real, steps, opts);
  const b = await runSteps(ours, steps, opts);
  for (let i = 0; i < steps.length; i++) {
    assert.deepEqual(b[i], a[i], `step ${i} (etcdctl ${steps[i]!.join(' ')}): ours (actual) vs real etcd (expected)`);
  }
  return a;
}

describe('ETCDCTL_API=2 etcdctl: real etcd 3.4 vs ours', { skip }, () => {
  test('set, get, mk, mk on an existing key, update, update on a missing key', async () => {
    const r = await compare([
      ['set', '/c1/a', 'one'],
      ['get', '/c1/a'],
      ['mk', '/c1/b', 'two'],
      ['mk', '/c1/b', 'again'],
      ['get', '/c1/b'],
      ['update', '/c1/a', 'uno'],
      ['get', '/c1/a'],
      ['update', '/c1/missing', 'x'],
      ['get', '/c1/missing'],
      ['-o', 'extended', 'get', '/c1/a'],
      ['-o', 'json', 'get', '/c1/b'],
    ]);
    // sanity on the reference itself, so the comparison is not between two empty outputs
    assert.equal(r[1]!.stdout, 'one\n');
    assert.match(r[3]!.stderr, /105: Key already exists \(\/c1\/b\)/);
    assert.notEqual(r[3]!.code, 0);
  });

  test('mkdir, ls, ls -r, ls --sort, get on a directory, rmdir, rm, rm -r', async () => {
    const steps = [
      ['mkdir', '/c2/dir'],
      ['mkdir', '/c2/dir'],
      ['set', '/c2/dir/z', 'Z'],
      ['set', '/c2/dir/a', 'A'],
      ['set', '/c2/dir/sub/m', 'M'],
      ['mkdir', '/c2/empty'],
      ['ls', '/c2/dir'], // 6: unsorted
      ['ls', '--sort', '/c2/dir'],
      ['ls', '--sort', '-r', '/c2'],
      ['ls', '-r', '/c2'], // 9: unsorted
      ['ls', '--sort', '-p', '/c2'],
      ['get', '/c2/dir'],
      ['rmdir', '/c2/dir'],
      ['rmdir', '/c2/empty'],
      ['rm', '/c2/dir/a'],
      ['rm', '/c2/dir/a'],
      ['rm', '/c2/dir'],
      ['rm', '-r', '/c2/dir'],
      ['ls', '--sort', '-r', '/c2'],
      ['ls', '/c2/dir'],
    ];
    const r = await compare(steps, { sortStdoutOf: [6, 9] });
    assert.equal(r[7]!.stdout, '/c2/dir/a\n/c2/dir/sub\n/c2/dir/z\n');
  });

  test('set --ttl then get (simple and extended), set --ttl on a dir via setdir, expiry', async () => {
    const steps = [
      ['set', '--ttl', '60', '/c3/t', 'ttl-val'],
      ['get', '/c3/t'],
      ['set', '--ttl', '1', '/c3/short', 'gone-soon'],
      ['setdir', '--ttl', '60', '/c3/d'],
    ];
    const ttlOf = async (s: Server, key: string): Promise<number> => {
      const r = await ctl2(s, ['-o', 'json', 'get', key]);
      return (JSON.parse(r.stdout) as { node?: { ttl?: number } }).node?.ttl ?? -1;
    };
    await compare(steps);
    for (const s of [real, ours]) {
      const t = await ttlOf(s, '/c3/t');
      assert.ok(t >= 57 && t <= 60, `${s.name}: ttl of /c3/t after set --ttl 60 is ${t}`);
    }
    await sleep(2_500);
    await compare([
      ['get', '/c3/short'],
      ['get', '/c3/t'],
    ]);
  });

  test('watch: one event from a background writer', async () => {
    const outs: Record<string, EtcdctlResult> = {};
    for (const s of [real, ours]) {
      const w = ctl2(s, ['watch', '/c4/w'], { timeoutMs: 8_000 });
      await sleep(1_000);
      const set = await ctl2(s, ['set', '/c4/w', 'watched']);
      assert.equal(set.code, 0, `${s.name}: set ${set.stderr}`);
      outs[s.name] = await w;
    }
    const e = outs.etcd!;
    const o = outs.ours!;
    assert.equal(e.timedOut, false, 'real etcd: watch did not exit after one event');
    assert.equal(e.stdout, 'watched\n');
    assert.deepEqual({ code: o.code, stdout: norm(ours, o.stdout), timedOut: o.timedOut }, { code: e.code, stdout: norm(real, e.stdout), timedOut: false });
  });

  test('exec-watch: a single change runs the command once', async () => {
    const outs: Record<string, string> = {};
    for (const s of [real, ours]) {
      let seen = '';
      // etcdctl quirk: unless a flag precedes the key, urfave/cli swallows `--` and exec-watch then
      // takes the LAST argument as the key; `-r` (harmless on a plain key) keeps the documented form.
      const w = ctl2(s, ['exec-watch', '-r', '/c5/x', '--', 'sh', '-c', 'echo "fired $ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE"'], {
        timeoutMs: 4_000,
        onStdout: (c) => {
          seen += c;
        },
      });
      await sleep(1_000);
      const set = await ctl2(s, ['set', '/c5/x', 'v1']);
      assert.equal(set.code, 0, `${s.name}: set ${set.stderr}`);
      const r = await w; // exec-watch never exits on its own: stopped by the timeout
      assert.equal(r.timedOut, true, `${s.name}: exec-watch exited early (code ${r.code}): ${r.stderr}`);
      outs[s.name] = seen;
    }
    assert.equal(outs.etcd, 'fired set /c5/x v1\n');
    assert.equal(outs.ours, outs.etcd, 'exec-watch command output: ours (actual) vs real etcd (expected)');
  });

  test('member list (needs GET /v2/members on our server)', async (t) => {
    const res = await request(`${ours.clientUrl}/v2/members`);
    await res.body.text();
    if (res.statusCode === 404) {
      t.skip('our server answers 404 to GET /v2/members (the v2 members API is not there yet): member list not compared');
      return;
    }
    await compare([['member', 'list']]);
  });
});
