// The Python `etcd` module (python-etcd 0.4.x, Debian package python3-etcd) against real etcd 3.4
// (--enable-v2) and against our server: one script, one printed line per step, outputs compared.
// Indexes are printed relative to the script's first write, so the two servers' different starting
// indexes do not matter but every index step between writes does.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hasEtcd, makeTempDir, removeTempDir, startOurServer, startRealEtcd, type Server } from '../helpers/procs.js';

/** `python3` on PATH may be a pyenv build that cannot see Debian's dist-packages: try both. */
function findPython(): string | undefined {
  for (const cand of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(cand, ['-c', 'import etcd'], { stdio: 'ignore', timeout: 10_000 });
    if (r.status === 0) return cand;
  }
  return undefined;
}

const python = findPython();
const skip = !hasEtcd()
  ? 'etcd / etcdctl not installed (/usr/bin/etcd)'
  : python === undefined
    ? 'no python3 with the `etcd` module (python-etcd): install the Debian package python3-etcd (add it to the apt-get install list in .ci/run)'
    : false;

const SCRIPT = String.raw`
import sys, threading, time, re
import etcd

port = int(sys.argv[1])
c = etcd.Client(host='127.0.0.1', port=port, protocol='http', read_timeout=10)
base = None

def rel(i):
    if i is None:
        return 'None'
    return '+%d' % (int(i) - base)

def rel_text(s):
    # absolute indexes inside error causes, e.g. "[5 != 7]"
    return re.sub(r'\b\d+\b', lambda m: rel(int(m.group(0))) if base is not None and int(m.group(0)) >= base else m.group(0), s or '')

def out(step, *parts):
    print(step, *parts, flush=True)

def err(step, e):
    p = getattr(e, 'payload', None) or {}
    out(step, 'raised', type(e).__name__, p.get('errorCode'), p.get('message'), rel_text(str(p.get('cause'))), 'index', rel(p.get('index')) if 'index' in p else 'None')

def res(step, r, *extra):
    prev = r._prev_node.value if getattr(r, '_prev_node', None) is not None else None
    key = re.sub(r'/(\d{20})$', lambda m: '/<in-order %s>' % rel(int(m.group(1))), r.key or '')
    out(step, r.action, key, r.value, 'dir' if r.dir else 'file', 'created', rel(r.createdIndex), 'modified', rel(r.modifiedIndex), 'etcd_index', rel(r.etcd_index), 'prev', prev, *extra)

def step(name, fn):
    try:
        fn()
    except Exception as e:  # one broken step must not hide the others
        err(name + ' UNEXPECTED', e)

# --- write / read / delete
def kv():
    global base
    r = c.write('/py/kv/a', 'one')
    base = r.modifiedIndex
    res('write', r)
    res('read', c.read('/py/kv/a'))
    res('overwrite', c.write('/py/kv/a', 'two'))
    res('delete', c.delete('/py/kv/a'))
    try:
        c.read('/py/kv/a')
        out('read-deleted', 'no error')
    except etcd.EtcdKeyNotFound as e:
        err('read-deleted', e)
step('kv', kv)

# --- directories
def dirs():
    res('mkdir', c.write('/py/dir', None, dir=True))
    c.write('/py/dir/x', 'X')
    c.write('/py/dir/sub/y', 'Y')
    c.write('/py/dir/w', 'W')
    c.write('/py/dir/empty', None, dir=True)
    r = c.read('/py/dir', recursive=True, sorted=True)
    out('ls-recursive-leaves', sorted((n.key, n.value, n.dir) for n in r.leaves))
    r = c.read('/py/dir')
    out('ls-children', sorted((ch['key'], ch.get('dir', False), ch.get('value')) for ch in r._children))
    try:
        c.delete('/py/dir')
        out('delete-dir-as-file', 'no error')
    except etcd.EtcdException as e:
        err('delete-dir-as-file', e)
    try:
        c.delete('/py/dir', dir=True)
        out('delete-nonempty-dir', 'no error')
    except etcd.EtcdException as e:
        err('delete-nonempty-dir', e)
    res('delete-empty-dir', c.delete('/py/dir/empty', dir=True))
    res('delete-recursive', c.delete('/py/dir', recursive=True))
    try:
        c.read('/py/dir', recursive=True)
        out('read-removed-dir', 'no error')
    except etcd.EtcdKeyNotFound as e:
        err('read-removed-dir', e)
step('dirs', dirs)

# --- compare-and-swap
def cas():
    c.write('/py/cas', 'v1')
    res('cas-prevValue', c.test_and_set('/py/cas', 'v2', 'v1'))
    try:
        c.write('/py/cas', 'v3', prevValue='wrong')
        out('cas-prevValue-fail', 'no error')
    except etcd.EtcdCompareFailed as e:
        err('cas-prevValue-fail', e)
    cur = c.read('/py/cas')
    res('cas-prevIndex', c.write('/py/cas', 'v4', prevIndex=cur.modifiedIndex))
    try:
        c.write('/py/cas', 'v5', prevIndex=cur.modifiedIndex)
        out('cas-prevIndex-fail', 'no error')
    except etcd.EtcdCompareFailed as e:
        err('cas-prevIndex-fail', e)
    r = c.read('/py/cas')
    r.value = 'v6'
    res('update-object', c.update(r))
    try:
        c.write('/py/cas', 'v7', prevExist=False)
        out('create-existing', 'no error')
    except etcd.EtcdAlreadyExist as e:
        err('create-existing', e)
    res('cad-prevValue', c.delete('/py/cas', prevValue='v6'))
step('cas', cas)

# --- TTL and expiry
def ttl():
    r = c.write('/py/ttl', 'short', ttl=2)
    res('ttl-write', r, 'ttl', r.ttl, 'has-expiration', r.expiration is not None)
    r = c.read('/py/ttl')
    out('ttl-read', r.value, 'ttl-in-range', r.ttl in (1, 2), 'has-expiration', r.expiration is not None)
    time.sleep(3.5)
    try:
        c.read('/py/ttl')
        out('ttl-expired', 'still there')
    except etcd.EtcdKeyNotFound as e:
        err('ttl-expired', e)
step('ttl', ttl)

# --- in-order keys
def inorder():
    for v in ('job1', 'job2', 'job3'):
        r = c.write('/py/queue', v, append=True)
        name = r.key.rsplit('/', 1)[1]
        out('append', r.action, v, 'name==created-index-20-digits', name == str(r.createdIndex).zfill(20), 'created', rel(r.createdIndex))
    r = c.read('/py/queue', sorted=True)
    kids = list(r.children)
    out('queue-sorted', [k.value for k in kids], 'keys-ascending', [k.key for k in kids] == sorted(k.key for k in kids))
    first = kids[0]
    res('queue-pop', c.delete(first.key, prevIndex=first.modifiedIndex))
step('inorder', inorder)

# --- watch with index
def watch():
    w = c.write('/py/watch', 'a')
    c.write('/py/watch', 'b')
    res('watch-history', c.read('/py/watch', wait=True, waitIndex=w.modifiedIndex))
    res('watch-history-next', c.read('/py/watch', wait=True, waitIndex=w.modifiedIndex + 1))
    cur = c.read('/py/watch')
    t = threading.Timer(0.7, lambda: c.write('/py/watch', 'c'))
    t.start()
    r = c.read('/py/watch', wait=True, waitIndex=cur.etcd_index + 1, timeout=8)
    t.join()
    res('watch-future', r)
    res('watch-recursive-history', c.read('/py', wait=True, recursive=True, waitIndex=w.modifiedIndex + 1))
step('watch', watch)

# --- leader election with TTL
def election():
    res('elect-node1', c.write('/py/leader', 'node1', prevExist=False, ttl=5))
    try:
        c.write('/py/leader', 'node2', prevExist=False, ttl=5)
        out('elect-node2', 'no error')
    except etcd.EtcdAlreadyExist as e:
        err('elect-node2', e)
    r = c.write('/py/leader', 'node1', prevExist=True, ttl=5)
    res('refresh-node1', r, 'ttl', r.ttl)
    r = c.write('/py/leader', 'node1', prevValue='node1', ttl=5)
    res('refresh-node1-cas', r, 'ttl', r.ttl)
    try:
        c.write('/py/leader', 'node2', prevValue='node2', ttl=5)
        out('refresh-node2', 'no error')
    except etcd.EtcdCompareFailed as e:
        err('refresh-node2', e)
    out('leader', c.read('/py/leader').value)
    res('resign-node1', c.delete('/py/leader', prevValue='node1'))
    res('elect-node2-again', c.write('/py/leader', 'node2', prevExist=False, ttl=5))
step('election', election)
out('done')
`;

let real: Server;
let ours: Server;
let dir: string;
let scriptPath: string;

before(async () => {
  if (skip) return;
  dir = await makeTempDir('python-etcd-');
  scriptPath = join(dir, 'scenario.py');
  await writeFile(scriptPath, SCRIPT);
  [real, ours] = await Promise.all([startRealEtcd({ enableV2: true }), startOurServer()]);
});
after(async () => {
  await Promise.all([real?.stop(), ours?.stop()]);
  if (dir !== undefined) await removeTempDir(dir);
});

function runScript(s: Server): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(python!, [scriptPath, String(new URL(s.clientUrl).port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

describe('python-etcd (v2 client) against real etcd 3.4 and ours', { skip }, () => {
  test('same script, same step-by-step output', async () => {
    const [e, o] = await Promise.all([runScript(real), runScript(ours)]);
    assert.equal(e.code, 0, `script against real etcd failed:\n${e.stderr}`);
    const eLines = e.stdout.split('\n');
    // the reference run must itself be complete and clean, or the comparison means little
    assert.equal(eLines.filter((l) => l.includes('UNEXPECTED')).join('\n'), '', 'real etcd run has unexpected errors');
    assert.ok(eLines.includes('done'), `real etcd run incomplete:\n${e.stdout}`);
    assert.equal(o.code, 0, `script against ours failed:\n${o.stderr}`);
    assert.deepEqual(o.stdout.split('\n'), eLines, 'script output: ours (actual) vs real etcd (expected)');
  });
});
