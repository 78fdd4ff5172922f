import { pino, type Logger, type LoggerOptions } from 'pino';

/** Structured pino logs; human-readable only when a person is watching the terminal. */
function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
    ...(process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } } } : {}),
  };
}

/**
 * The process logger. Off a terminal, lines go to stdout asynchronously: a
 * busy API logs a line per request, and a blocking write each would cost as
 * much as the request. Lines written meanwhile go out together; pino flushes
 * what is left when the process exits.
 */
export function createLogger(level: string): Logger {
  const options = loggerOptions(level);
  return options.transport ? pino(options) : pino(options, pino.destination({ dest: 1, sync: false }));
}
