// LazyChildLogger: fastify's per-request child logger, made only when a line is logged at an
// enabled level, with the request's bindings and the parent's redaction.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, LazyChildLogger } from '../../src/log.js';

test('a lazy child makes its pino child on the first enabled line only', () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const parent = createLogger('warn', sink);
  let made = 0;
  const child = parent.child.bind(parent);
  parent.child = ((...args: Parameters<typeof child>) => {
    made++;
    return child(...args);
  }) as typeof parent.child;

  const lazy = new LazyChildLogger(parent, { reqId: 'req-1' });
  lazy.info('not logged at warn');
  lazy.debug({ a: 1 }, 'nor this');
  assert.equal(made, 0, 'no child for disabled levels');
  assert.equal(lazy.level, 'warn');

  lazy.warn({ password: 'hunter2' }, 'logged');
  lazy.error('again');
  assert.equal(made, 1, 'one child, made once');
  sink.end();
  assert.deepEqual(lines.map((l) => [l.msg, l.reqId]), [['logged', 'req-1'], ['again', 'req-1']]);
  assert.equal(lines[0]!.password, '[Redacted]');

  // A level set on the child applies to it (and makes it).
  const verbose = new LazyChildLogger(parent, { reqId: 'req-2' });
  verbose.level = 'debug';
  assert.equal(made, 2);
  assert.equal(verbose.level, 'debug');
});
