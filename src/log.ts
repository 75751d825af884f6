// The process logger: pino (JSON lines), with the fields that may carry secrets redacted wherever
// they appear in a logged object: auth headers (Authorization, Grpc-Metadata-Token, Cookie) and
// password fields (v3 Authenticate/UserAdd/UserChangePassword requests, v2 auth bodies).
import { pino, type DestinationStream, type Logger } from 'pino';

const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["grpc-metadata-token"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["grpc-metadata-token"]',
  'headers.cookie',
  'authorization',
  'token',
  'password',
  '*.password',
  '*.*.password',
] as const;

export function createLogger(level: string, destination: DestinationStream): Logger {
  return pino({ level, redact: { paths: [...REDACTED_PATHS], censor: '[Redacted]' } }, destination);
}
