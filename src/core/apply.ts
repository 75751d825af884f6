// The one deterministic apply(request, index) of the embedded core: every mutating request,
// once ordered (today: by arrival; with Raft: by the log), goes through here and nowhere else.
import { EtcdError } from '../backend/errors.js';
import type { AlarmMember, AlarmRequest, AlarmResponse, CompactionResponse, DeleteRangeResponse, LeaseGrantResponse, LeaseRevokeResponse, PutResponse, TxnResponse } from '../gen/etcdserverpb/rpc.js';
import type { AuthStore, TokenProvider } from './auth/index.js';
import type { InternalRequest } from '../gen/serverpb/internal.js';
import { AlarmRequest_AlarmAction as AlarmAction, AlarmType } from '../gen/etcdserverpb/rpc.js';
import { keyRange, toBin } from '../util/bytes.js';
import { deleteOp, putOp, revHeader, txnOp } from './kv.js';
import type { Lessor } from './lease/lessor.js';
import type { Change, MvccStore, WriteTxn } from './mvcc/store.js';
import type { MvccStorage } from './mvcc/storage.js';

export type ApplyResponse =
  | { readonly $case: 'put'; readonly value: PutResponse }
  | { readonly $case: 'deleteRange'; readonly value: DeleteRangeResponse }
  | { readonly $case: 'txn'; readonly value: TxnResponse }
  | { readonly $case: 'compaction'; readonly value: CompactionResponse }
  | { readonly $case: 'leaseGrant'; readonly value: LeaseGrantResponse }
  | { readonly $case: 'leaseRevoke'; readonly value: LeaseRevokeResponse }
  | { readonly $case: 'alarm'; readonly value: AlarmResponse }
  /** Every auth change answers an empty response; Authenticate answers its token. */
  | { readonly $case: 'auth'; readonly value: { readonly token: string } };

export interface ApplyResult {
  readonly response: ApplyResponse | undefined;
  readonly error: EtcdError | undefined;
  /** Revision after the request (unchanged when nothing was written). */
  readonly rev: number;
  readonly changes: readonly Change[];
}

/** The requests whose key permissions were checked at an auth revision before proposing. */
const KEY_WRITES: ReadonlySet<string | undefined> = new Set(['put', 'deleteRange', 'txn', 'leaseRevoke']);

const META_INDEX = 'consistentIndex';
const META_ALARMS = 'alarms';

function leaseRecord(ttl: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeDoubleBE(ttl);
  return b;
}

export class Applier {
  private index = 0;
  alarms: AlarmMember[] = [];

  constructor(
    private readonly store: MvccStore,
    private readonly lessor: Lessor,
    private readonly storage: MvccStorage,
    private readonly auth: AuthStore,
    private readonly tokens: TokenProvider,
  ) {
    this.load();
  }

  /** (Re)reads the applied index and alarms from storage. */
  load(): void {
    const b = this.storage.getMeta(META_INDEX);
    this.index = b === undefined ? 0 : b.readDoubleBE(0);
    const a = this.storage.getMeta(META_ALARMS);
    this.alarms = a === undefined ? [] : (JSON.parse(a.toString()) as { m: string; a: number }[]).map((x) => ({ memberID: BigInt(x.m), alarm: x.a }));
  }

  /** Index of the last applied request (persisted with the data it produced). */
  get appliedIndex(): number {
    return this.index;
  }

  apply(req: InternalRequest, index: number): ApplyResult {
    const txn = this.store.beginWrite();
    let response: ApplyResponse | undefined;
    let error: EtcdError | undefined;
    try {
      response = this.dispatch(req, txn, index);
    } catch (e) {
      // Every request is fully checked before it writes; an error after a write is a bug, and
      // answering it would leave a half-applied request behind: stop instead.
      if (!(e instanceof EtcdError) || txn.changes.length > 0) throw e;
      error = e;
    }
    this.syncLeases(txn.changes);
    txn.end();
    this.markApplied(index);
    return { response, error, rev: this.store.currentRev, changes: txn.changes };
  }

  /** Records that the entry at index is applied (also entries that change no key: membership). */
  markApplied(index: number): void {
    this.index = index;
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleBE(index);
    this.storage.stage({ t: 'meta', name: META_INDEX, value: b });
  }

  private dispatch(req: InternalRequest, txn: WriteTxn, index: number): ApplyResponse {
    const r = req.request;
    // Key permissions were checked when the request was proposed, at the auth revision in its
    // header; an auth change ordered in between makes that check stale (etcd's
    // ErrAuthOldRevision). Auth management checks only the root role, never the revision.
    const authRev = Number(req.header?.authRevision ?? 0n);
    if (KEY_WRITES.has(r?.$case) && authRev !== 0 && authRev < this.auth.revision) throw new EtcdError('authOldRevision');
    const done = { $case: 'auth', value: { token: '' } } as const;
    switch (r?.$case) {
      case 'put': {
        if (r.value.lease !== 0n && !this.lessor.has(r.value.lease)) throw new EtcdError('leaseNotFound');
        const value = putOp(this.store, txn, r.value);
        value.header = revHeader(txn.readRev);
        return { $case: 'put', value };
      }
      case 'deleteRange':
        return { $case: 'deleteRange', value: deleteOp(txn, r.value) };
      case 'txn':
        return { $case: 'txn', value: txnOp(this.store, this.lessor, txn, r.value) };
      case 'compaction':
        this.store.compact(Number(r.value.revision));
        return { $case: 'compaction', value: { header: revHeader(this.store.currentRev) } };
      case 'leaseGrant': {
        const { ID, TTL } = r.value;
        if (this.lessor.has(ID)) throw new EtcdError('leaseExist');
        const ttl = this.lessor.effectiveTTL(Number(TTL));
        this.lessor.grant(ID, ttl);
        this.storage.stage({ t: 'lease', id: ID, value: leaseRecord(ttl) });
        return { $case: 'leaseGrant', value: { header: revHeader(this.store.currentRev), ID, TTL: BigInt(ttl), error: '' } };
      }
      case 'leaseRevoke': {
        const id = r.value.ID;
        if (!this.lessor.has(id)) throw new EtcdError('leaseNotFound');
        for (const k of this.lessor.revoke(id)) txn.deleteRange(keyRange(Buffer.from(k, 'latin1'), Buffer.alloc(0)));
        this.storage.stage({ t: 'lease', id, value: null });
        return { $case: 'leaseRevoke', value: { header: revHeader(txn.readRev) } };
      }
      case 'alarm':
        return { $case: 'alarm', value: this.alarm(r.value) };
      case 'authEnable':
        this.auth.enable();
        return done;
      case 'authDisable':
        this.auth.disable();
        this.tokens.disable();
        return done;
      case 'authenticate': {
        // The password was checked before proposing; the user may be gone or auth off since.
        const { name, simpleToken } = r.value;
        if (this.auth.passwordHashOf(name) === undefined) throw new EtcdError('authFailed');
        return { $case: 'auth', value: { token: this.tokens.assign(name, this.auth.revision, simpleToken, index) } };
      }
      case 'authUserAdd':
        this.auth.userAdd(r.value.name, r.value.passwordHash, r.value.options?.noPassword ?? false);
        return done;
      case 'authUserDelete':
        this.auth.userDelete(r.value.name);
        this.tokens.invalidateUser(r.value.name);
        return done;
      case 'authUserChangePassword':
        this.auth.userChangePassword(r.value.name, r.value.passwordHash);
        this.tokens.invalidateUser(r.value.name);
        return done;
      case 'authUserGrantRole':
        this.auth.userGrantRole(r.value.user, r.value.role);
        return done;
      case 'authUserRevokeRole':
        this.auth.userRevokeRole(r.value.name, r.value.role);
        return done;
      case 'authRoleAdd':
        this.auth.roleAdd(r.value.name);
        return done;
      case 'authRoleDelete':
        this.auth.roleDelete(r.value.role);
        return done;
      case 'authRoleGrantPermission':
        this.auth.roleGrantPermission(r.value);
        return done;
      case 'authRoleRevokePermission':
        this.auth.roleRevokePermission(r.value);
        return done;
      case undefined:
        throw new EtcdError('failed', 'empty internal request');
    }
  }

  private alarm(a: AlarmRequest): AlarmResponse {
    const i = this.alarms.findIndex((x) => x.memberID === a.memberID && x.alarm === a.alarm);
    let changed: AlarmMember | undefined;
    if (a.action === AlarmAction.ACTIVATE && a.alarm !== AlarmType.NONE && i < 0) {
      changed = { memberID: a.memberID, alarm: a.alarm };
      this.alarms.push(changed);
    } else if (a.action === AlarmAction.DEACTIVATE && i >= 0) {
      changed = this.alarms.splice(i, 1)[0];
    }
    if (changed !== undefined) {
      const json = JSON.stringify(this.alarms.map((x) => ({ m: x.memberID.toString(), a: x.alarm })));
      this.storage.stage({ t: 'meta', name: META_ALARMS, value: Buffer.from(json) });
    }
    return { header: undefined, alarms: changed === undefined ? [] : [changed] };
  }

  /** Keeps each lease's key set in step with the keys the txn wrote or deleted. */
  private syncLeases(changes: readonly Change[]): void {
    for (const c of changes) {
      const from = c.prev !== undefined ? c.prev.lease : 0n;
      const to = c.type === 'put' ? c.kv.lease : 0n;
      if (from === 0n && to === 0n) continue; // most keys: no lease, no key string to make
      const k = toBin(c.kv.key);
      if (from !== 0n) this.lessor.detach(from, k);
      if (to !== 0n) this.lessor.attach(to, k);
    }
  }
}
