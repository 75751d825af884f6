// An in-process v2 server for tests: the gateway tests' in-process server (the binary's own
// composition), optionally with another --v2-prefix.
import { startGateway, type GatewayServer } from '../gateway/harness.js';

export type V2TestServer = GatewayServer;

export function startV2Server(prefix?: string): Promise<V2TestServer> {
  return startGateway(prefix !== undefined ? ['--v2-prefix', prefix] : []);
}
