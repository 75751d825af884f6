// The process logger: pino (JSON lines), with the fields that may carry secrets redacted wherever
// they appear in a logged object: auth headers (Authorization, Grpc-Metadata-Token, Cookie) and
// password fields (v3 Authenticate/UserAdd/UserChangePassword requests, v2 auth bodies).
import { pino, type Bindings, type ChildLoggerOptions, type DestinationStream, type LogFn, type Logger } from 'pino';

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

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * A child of `parent` made on its first log line at an enabled level. Fastify gives each request a
 * child logger; pino's child() serialises the bindings through the redaction paths each time, while
 * at the HTTP logger's level (warn) almost no request logs anything.
 */
export class LazyChildLogger {
  private made: Logger | undefined;
  constructor(private readonly parent: Logger, private readonly bindings: Bindings) {}

  private real(): Logger {
    return (this.made ??= this.parent.child(this.bindings));
  }

  private emit(level: Level, args: Parameters<LogFn>): void {
    if ((this.made ?? this.parent).isLevelEnabled(level)) this.real()[level](...args);
  }

  get level(): string {
    return this.made?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.real().level = level;
  }

  fatal(...args: Parameters<LogFn>): void { this.emit('fatal', args); }
  error(...args: Parameters<LogFn>): void { this.emit('error', args); }
  warn(...args: Parameters<LogFn>): void { this.emit('warn', args); }
  info(...args: Parameters<LogFn>): void { this.emit('info', args); }
  debug(...args: Parameters<LogFn>): void { this.emit('debug', args); }
  trace(...args: Parameters<LogFn>): void { this.emit('trace', args); }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): Logger {
    return this.real().child(bindings, options);
  }
}
