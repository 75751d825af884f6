// The gateway JSON codec against etcd 3.4's captured bodies (spec section 5.8) and Go's error texts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DecodeError, GatewayCodec, RequestStreamDecoder, decodeStdBase64, type Message } from '../../src/gateway/index.js';
import * as pb from '../../src/gen/etcdserverpb/rpc.js';
import * as mvcc from '../../src/gen/mvccpb/kv.js';
import * as lockpb from '../../src/gen/v3lockpb/v3lock.js';
import * as electionpb from '../../src/gen/v3electionpb/v3election.js';

const codec = new GatewayCodec();
const decode = (type: string, body: string): Message => codec.decodeBody(type, Buffer.from(body));
const decodeError = (type: string, body: string): string => {
  try {
    decode(type, body);
  } catch (e) {
    if (e instanceof DecodeError) return e.message;
    throw e;
  }
  return 'no error';
};

describe('request decoding', () => {
  test('defaults match ts-proto fromPartial({}) for every message type', () => {
    const modules = [['etcdserverpb', pb], ['mvccpb', mvcc], ['v3lockpb', lockpb], ['v3electionpb', electionpb]] as const;
    let n = 0;
    for (const [pkg, mod] of modules) {
      for (const [name, value] of Object.entries(mod)) {
        if (typeof value !== 'object' || value === null || !('fromPartial' in value) || typeof value.fromPartial !== 'function') continue;
        const want: unknown = value.fromPartial({});
        const got = decode(`${pkg}.${name}`, '');
        assert.deepEqual(got, want, `${pkg}.${name}`);
        n++;
      }
    }
    assert.ok(n > 60, `checked ${n} types`);
  });

  test('original and lowerCamelCase names, camel wins, unknown ignored, null absent', () => {
    const r = decode('etcdserverpb.RangeRequest', '{"key":"YQ==","rangeEnd":"AA==","keys_only":true,"countOnly":false,"limit":"2","bogus":1,"revision":null,"KEY":"Yg=="}');
    assert.deepEqual(r, pb.RangeRequest.fromPartial({ key: Buffer.from('a'), rangeEnd: Buffer.from([0]), keysOnly: true, limit: 2n }));
    assert.equal((decode('etcdserverpb.RangeRequest', '{"range_end":"YQ==","rangeEnd":"Yg=="}').rangeEnd as Buffer).toString(), 'b');
    assert.deepEqual(decode('etcdserverpb.LeaseGrantRequest', '{"ttl":30,"id":"2000"}'), pb.LeaseGrantRequest.fromPartial({}));
    assert.deepEqual(decode('etcdserverpb.LeaseGrantRequest', '{"TTL":60,"ID":"-7"}'), pb.LeaseGrantRequest.fromPartial({ TTL: 60n, ID: -7n }));
  });

  test('enums by name or number; unknown numbers kept', () => {
    assert.equal(decode('etcdserverpb.RangeRequest', '{"sort_order":"DESCEND"}').sortOrder, 2);
    assert.equal(decode('etcdserverpb.RangeRequest', '{"sort_order":7}').sortOrder, 7);
    assert.deepEqual(decode('etcdserverpb.WatchCreateRequest', '{"filters":["NOPUT",1]}').filters, [0, 1]);
  });

  test('oneofs', () => {
    const t = decode('etcdserverpb.TxnRequest', '{"compare":[{"target":"CREATE","key":"YQ==","createRevision":"16"}],"success":[{"requestPut":{"key":"YQ==","value":"YmFy","prevKv":true}}]}');
    assert.deepEqual(t, pb.TxnRequest.fromPartial({
      compare: [{ target: pb.Compare_CompareTarget.CREATE, key: Buffer.from('a'), targetUnion: { $case: 'createRevision', value: 16n } }],
      success: [{ request: { $case: 'requestPut', value: { key: Buffer.from('a'), value: Buffer.from('bar'), prevKv: true } } }],
    }));
    const w = decode('etcdserverpb.WatchRequest', '{"progress_request":{}}');
    assert.deepEqual(w, { requestUnion: { $case: 'progressRequest', value: {} } });
    const c = decode('etcdserverpb.Compare', '{"value":null}');
    assert.deepEqual(c.targetUnion, { $case: 'value', value: Buffer.alloc(0) });
  });

  test('trailing data and duplicate keys', () => {
    assert.equal((decode('etcdserverpb.RangeRequest', '{"key":"YQ=="} trailing').key as Buffer).toString(), 'a');
    assert.equal((decode('etcdserverpb.RangeRequest', '{"key":"YQ==","key":"Yg=="}').key as Buffer).toString(), 'b');
    assert.deepEqual(decode('etcdserverpb.RangeRequest', ' \n '), pb.RangeRequest.fromPartial({}));
    assert.deepEqual(decode('etcdserverpb.RangeRequest', 'null'), pb.RangeRequest.fromPartial({}));
  });

  test('big int64 values keep their precision', () => {
    assert.equal(decode('etcdserverpb.MemberRemoveRequest', '{"ID":"14341633390409079811"}').ID, 14341633390409079811n);
    assert.equal(decode('etcdserverpb.MemberRemoveRequest', '{"ID":14341633390409079811}').ID, 14341633390409079811n);
    assert.equal(decode('etcdserverpb.LeaseRevokeRequest', '{"ID":-9223372036854775808}').ID, -(2n ** 63n));
  });

  const errors: ReadonlyArray<readonly [string, string, string]> = [
    ['etcdserverpb.RangeRequest', '{"key":"YQ=="', 'unexpected EOF'],
    ['etcdserverpb.RangeRequest', 'not json', `invalid character 'o' in literal null (expecting 'u')`],
    ['etcdserverpb.RangeRequest', '{"key":"YQ"}', 'illegal base64 data at input byte 0'],
    ['etcdserverpb.RangeRequest', '{"key":"_-8="}', 'illegal base64 data at input byte 0'],
    ['etcdserverpb.RangeRequest', '{"key":"YQ=x"}', 'illegal base64 data at input byte 2'],
    ['etcdserverpb.RangeRequest', '{"key":"YWJjZA=="}', 'no error'],
    ['etcdserverpb.RangeRequest', '{"key":"YWJjZA==YQ=="}', 'illegal base64 data at input byte 8'],
    ['etcdserverpb.RangeRequest', '{"limit":1.5}', 'json: cannot unmarshal number 1.5 into Go value of type int64'],
    ['etcdserverpb.RangeRequest', '{"limit":"abc"}', `invalid character 'a' looking for beginning of value`],
    ['etcdserverpb.RangeRequest', '{"limit":""}', 'unexpected end of JSON input'],
    ['etcdserverpb.RangeRequest', '{"limit":"12x"}', `invalid character 'x' after top-level value`],
    ['etcdserverpb.RangeRequest', '{"limit":9223372036854775808}', 'json: cannot unmarshal number 9223372036854775808 into Go value of type int64'],
    ['etcdserverpb.RangeRequest', '{"limit":true}', 'json: cannot unmarshal bool into Go value of type int64'],
    ['etcdserverpb.RangeRequest', '{"sort_order":"SIDEWAYS"}', 'unknown value "SIDEWAYS" for enum etcdserverpb.RangeRequest_SortOrder'],
    ['etcdserverpb.RangeRequest', '{"sort_order":1.5}', 'json: cannot unmarshal number 1.5 into Go value of type etcdserverpb.RangeRequest_SortOrder'],
    ['etcdserverpb.RangeRequest', '{"serializable":"true"}', 'json: cannot unmarshal string into Go value of type bool'],
    ['etcdserverpb.RangeRequest', '[]', 'json: cannot unmarshal array into Go value of type map[string]json.RawMessage'],
    ['etcdserverpb.RangeRequest', '"x"', 'json: cannot unmarshal string into Go value of type map[string]json.RawMessage'],
    ['etcdserverpb.RangeRequest', '{"key":5}', 'json: cannot unmarshal number into Go value of type []uint8'],
    ['etcdserverpb.RangeRequest', '{"key" 5}', `invalid character '5' after object key`],
    ['etcdserverpb.RangeRequest', '{"key":"YQ==" "x"}', `invalid character '"' after object key:value pair`],
    ['etcdserverpb.RangeRequest', '{5}', `invalid character '5' looking for beginning of object key string`],
    ['etcdserverpb.RangeRequest', '{"key":"\\x"}', `invalid character 'x' in string escape code`],
    ['etcdserverpb.RangeRequest', '{"limit":-}', `invalid character '}' in numeric literal`],
    ['etcdserverpb.RangeRequest', '{"limit":1.}', `invalid character '}' after decimal point in numeric literal`],
    ['etcdserverpb.RangeRequest', '{"limit":1e}', `invalid character '}' in exponent of numeric literal`],
    ['etcdserverpb.TxnRequest', '{"success":{}}', 'json: cannot unmarshal object into Go value of type []json.RawMessage'],
    ['etcdserverpb.TxnRequest', '{"success":[1,]}', `invalid character ']' looking for beginning of value`],
    ['etcdserverpb.LeaseKeepAliveRequest', '{"ID":"1"', 'unexpected EOF'],
    ['etcdserverpb.WatchRequest', '{"create_request":{"filters":["NOPE"]}}', 'unknown value "NOPE" for enum etcdserverpb.WatchCreateRequest_FilterType'],
    ['etcdserverpb.MemberAddRequest', '{"peerURLs":[5]}', 'json: cannot unmarshal number into Go value of type string'],
    ['etcdserverpb.AlarmRequest', '{"memberID":-1}', 'json: cannot unmarshal number -1 into Go value of type uint64'],
  ];
  for (const [type, body, want] of errors) {
    test(`${type} ${body} -> ${want}`, () => assert.equal(decodeError(type, body), want));
  }

  test('base64 skips CR/LF like Go', () => {
    assert.equal(decodeStdBase64(Buffer.from('YW\nJj\r\n')).toString(), 'abc');
  });
});

const failureOf = (d: RequestStreamDecoder): string => d.failure?.message ?? 'none';

describe('request streams', () => {
  test('back-to-back values, split anywhere', () => {
    const body = '{"create_request":{"key":"YQ==","watch_id":"7"}} {"progress_request":{}}{"cancel_request":{"watch_id":"7"}}';
    for (let cut = 0; cut <= body.length; cut++) {
      const d = new RequestStreamDecoder(codec, 'etcdserverpb.WatchRequest', 1 << 20);
      const got = [...d.push(Buffer.from(body.slice(0, cut))), ...d.push(Buffer.from(body.slice(cut))), ...d.end()];
      assert.deepEqual(got.map((m) => (m.requestUnion as { $case: string }).$case), ['createRequest', 'progressRequest', 'cancelRequest']);
    }
  });

  test('a bare number is complete only at the end', () => {
    const d = new RequestStreamDecoder(codec, 'etcdserverpb.LeaseKeepAliveRequest', 1 << 20);
    assert.deepEqual(d.push(Buffer.from('{"ID":"5"} 12')), [pb.LeaseKeepAliveRequest.fromPartial({ ID: 5n })]);
    assert.equal(failureOf(d), 'none');
    assert.deepEqual(d.end(), []);
    assert.match(failureOf(d), /cannot unmarshal number into Go value of type map/);
  });

  test('garbage after a value fails only at that value', () => {
    const d = new RequestStreamDecoder(codec, 'etcdserverpb.LeaseKeepAliveRequest', 1 << 20);
    assert.deepEqual(d.push(Buffer.from('{"ID":"555"} garbage {"ID":"1"}')), [pb.LeaseKeepAliveRequest.fromPartial({ ID: 555n })]);
    assert.equal(d.failure?.message, `invalid character 'g' looking for beginning of value`);
    assert.deepEqual(d.push(Buffer.from('{"ID":"2"}')), []);
  });
});

const HDR = { clusterId: 2375181864447732657n, memberId: 9368506742490709939n, revision: 6n, raftTerm: 2n };
const HDR_JSON = '{"cluster_id":"2375181864447732657","member_id":"9368506742490709939","revision":"6","raft_term":"2"}';
const kv = (key: string, c: bigint, m: bigint, v: bigint, value: string, lease = 0n): mvcc.KeyValue =>
  mvcc.KeyValue.fromPartial({ key: Buffer.from(key), createRevision: c, modRevision: m, version: v, value: Buffer.from(value), lease });

describe('response encoding', () => {
  test('range with kvs, more and count; zero values omitted', () => {
    const r = pb.RangeResponse.fromPartial({ header: HDR, kvs: [kv('a', 3n, 6n, 2n, '11')], more: true, count: 2n });
    assert.equal(codec.encode('etcdserverpb.RangeResponse', r),
      `{"header":${HDR_JSON},"kvs":[{"key":"YQ==","create_revision":"3","mod_revision":"6","version":"2","value":"MTE="}],"more":true,"count":"2"}`);
    assert.equal(codec.encode('etcdserverpb.RangeResponse', pb.RangeResponse.fromPartial({ header: HDR })), `{"header":${HDR_JSON}}`);
    const empty = pb.RangeResponse.fromPartial({ header: HDR, kvs: [kv('empty', 8n, 8n, 1n, '')], count: 1n });
    assert.match(codec.encode('etcdserverpb.RangeResponse', empty), /"version":"1"\}\],"count":"1"\}$/);
  });

  test('nested txn header is {} and oneof responses use original names', () => {
    const r = pb.TxnResponse.fromPartial({
      header: { ...HDR, revision: 16n }, succeeded: true,
      responses: [{ response: { $case: 'responseTxn', value: { header: {}, succeeded: true, responses: [{ response: { $case: 'responsePut', value: { header: { revision: 16n } } } }] } } }],
    });
    assert.equal(codec.encode('etcdserverpb.TxnResponse', r),
      '{"header":{"cluster_id":"2375181864447732657","member_id":"9368506742490709939","revision":"16","raft_term":"2"},"succeeded":true,"responses":[{"response_txn":{"header":{},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"16"}}}]}}]}');
  });

  test('watch responses: negative ids, enums by name, compacted header without revision', () => {
    const canceled = pb.WatchResponse.fromPartial({ header: HDR, watchId: -1n, created: true, canceled: true, cancelReason: 'mvcc: watcher range is empty' });
    assert.equal(codec.resultLine('etcdserverpb.WatchResponse', canceled),
      `{"result":{"header":${HDR_JSON},"watch_id":"-1","created":true,"canceled":true,"cancel_reason":"mvcc: watcher range is empty"}}\n`);
    const del = pb.WatchResponse.fromPartial({ header: HDR, events: [{ type: mvcc.Event_EventType.DELETE, kv: { key: Buffer.from('w'), modRevision: 22n } }] });
    assert.equal(codec.encode('etcdserverpb.WatchResponse', del), `{"header":${HDR_JSON},"events":[{"type":"DELETE","kv":{"key":"dw==","mod_revision":"22"}}]}`);
  });

  test('status, member list, alarm, hash, lease', () => {
    const status = pb.StatusResponse.fromPartial({ header: HDR, version: '3.4.23', dbSize: 36864n, leader: 9368506742490709939n, raftIndex: 78n, raftTerm: 497n, raftAppliedIndex: 78n, errors: ['memberID:9368506742490709939 alarm:NOSPACE '], dbSizeInUse: 28672n });
    assert.equal(codec.encode('etcdserverpb.StatusResponse', status),
      `{"header":${HDR_JSON},"version":"3.4.23","dbSize":"36864","leader":"9368506742490709939","raftIndex":"78","raftTerm":"497","raftAppliedIndex":"78","errors":["memberID:9368506742490709939 alarm:NOSPACE "],"dbSizeInUse":"28672"}`);
    const members = pb.MemberListResponse.fromPartial({ members: [{ ID: 9368506742490709939n, name: 'default', peerURLs: ['http://127.0.0.1:25380'], clientURLs: ['http://127.0.0.1:25379'] }] });
    assert.equal(codec.encode('etcdserverpb.MemberListResponse', members), '{"members":[{"ID":"9368506742490709939","name":"default","peerURLs":["http://127.0.0.1:25380"],"clientURLs":["http://127.0.0.1:25379"]}]}');
    assert.equal(codec.encode('etcdserverpb.AlarmResponse', pb.AlarmResponse.fromPartial({ alarms: [{ memberID: 9368506742490709939n, alarm: pb.AlarmType.NOSPACE }] })), '{"alarms":[{"memberID":"9368506742490709939","alarm":"NOSPACE"}]}');
    assert.equal(codec.encode('etcdserverpb.AlarmResponse', pb.AlarmResponse.fromPartial({})), '{}');
    assert.equal(codec.encode('etcdserverpb.HashResponse', pb.HashResponse.fromPartial({ header: HDR, hash: 1964099342 })), `{"header":${HDR_JSON},"hash":1964099342}`);
    assert.equal(codec.encode('etcdserverpb.LeaseTimeToLiveResponse', pb.LeaseTimeToLiveResponse.fromPartial({ ID: 4242n, TTL: -1n })), '{"ID":"4242","TTL":"-1"}');
    assert.equal(codec.encode('etcdserverpb.LeaseTimeToLiveResponse', pb.LeaseTimeToLiveResponse.fromPartial({ ID: 1000n, TTL: 59n, grantedTTL: 60n, keys: [Buffer.from('l2'), Buffer.from('l1')] })), '{"ID":"1000","TTL":"59","grantedTTL":"60","keys":["bDI=","bDE="]}');
  });

  test('strings as Go encodes them', () => {
    const r = pb.StatusResponse.fromPartial({ version: '<a&b>\u2028"\\\n\x01' });
    assert.equal(codec.encode('etcdserverpb.StatusResponse', r), '{"version":"\\u003ca\\u0026b\\u003e\\u2028\\"\\\\\\n\\u0001"}');
  });

  test('election leader response', () => {
    const r = electionpb.CampaignResponse.fromPartial({ leader: { name: Buffer.from('elect'), key: Buffer.from('elect/2329'), rev: 44n, lease: 9001n } });
    assert.equal(codec.encode('v3electionpb.CampaignResponse', r), '{"leader":{"name":"ZWxlY3Q=","key":"ZWxlY3QvMjMyOQ==","rev":"44","lease":"9001"}}');
  });
});
