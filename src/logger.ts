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
 * The process logger. Off a terminal, lines go to stdout asynchronously and
 * together: a busy API logs a line per request, and a write each would cost a
 * tenth of the request. Lines are held until 4 KiB have gathered or 200 ms
 * have passed, whichever is first, so a quiet process still shows its lines
 * at once to a person tailing them; pino writes what is left when the process
 * exits (a SIGKILL loses at most those 200 ms). `to`: a file to write the same way instead (the benchmark's
 * /dev/null), whatever stdout is.
 */
export function createLogger(level: string, to?: string): Logger {
  const options = loggerOptions(level);
  if (to !== undefined) delete options.transport;
  return options.transport ? pino(options) : pino(options, pino.destination({ dest: to ?? 1, sync: false, minLength: 4096, periodicFlush: 200 }));
}
