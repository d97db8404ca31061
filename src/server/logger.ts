/**
 * A small levelled logger with bound fields (the request id above all), writing one line per record
 * to stderr as text or JSON. The server passes a child logger bound to the request id to everything
 * that runs for a request, so every line a request causes carries its id.
 *
 * @module
 */

/** Log levels, lowest first, spelled as the seed server's `--log-level` accepts them. */
export const LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** `text` is for people, `json` (one object per line) for log collectors. */
export type LogFormat = "text" | "json";

/** Structured values attached to a record. */
export type LogFields = Record<string, unknown>;

/** Where finished lines go; the default writes to stderr. */
export type LogSink = (line: string) => void;

/** Options of {@link Logger}. */
export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  sink?: LogSink;
  /** Fields put on every record of this logger. */
  fields?: LogFields;
}

const RANK: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40 };

const encoder = new TextEncoder();

/** Writes synchronously so lines of concurrent requests never interleave mid-line. */
function stderrSink(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

/** Accepts the level names case-insensitively, plus `WARN` as an alias. */
export function parseLogLevel(name: string): LogLevel | undefined {
  const upper = name.toUpperCase();
  if (upper === "WARN") return "WARNING";
  return (LOG_LEVELS as readonly string[]).includes(upper) ? upper as LogLevel : undefined;
}

/** Renders a field value for the text format: strings are quoted so whitespace stays visible. */
function textValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value instanceof Error) return JSON.stringify(value.message);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Levelled logger; {@link Logger.child} binds more fields without copying the sink or level. */
export class Logger {
  readonly level: LogLevel;
  readonly format: LogFormat;
  readonly fields: LogFields;
  #sink: LogSink;

  constructor(options: LoggerOptions = {}) {
    this.level = options.level ?? "INFO";
    this.format = options.format ?? "text";
    this.fields = options.fields ?? {};
    this.#sink = options.sink ?? stderrSink;
  }

  /** A logger that adds `fields` to every record (e.g. `{ request_id }`). */
  child(fields: LogFields): Logger {
    return new Logger({
      level: this.level,
      format: this.format,
      sink: this.#sink,
      fields: { ...this.fields, ...fields },
    });
  }

  /** True when records of `level` are written; lets callers skip building costly messages. */
  enabled(level: LogLevel): boolean {
    return RANK[level] >= RANK[this.level];
  }

  debug(message: string, fields?: LogFields): void {
    this.log("DEBUG", message, fields);
  }

  info(message: string, fields?: LogFields): void {
    this.log("INFO", message, fields);
  }

  warn(message: string, fields?: LogFields): void {
    this.log("WARNING", message, fields);
  }

  error(message: string, fields?: LogFields): void {
    this.log("ERROR", message, fields);
  }

  /** Writes one record if `level` is enabled. */
  log(level: LogLevel, message: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const all = fields ? { ...this.fields, ...fields } : this.fields;
    const time = new Date().toISOString();
    if (this.format === "json") {
      const record: LogFields = { time, level, msg: message };
      for (const [key, value] of Object.entries(all)) {
        record[key] = value instanceof Error ? value.message : value;
      }
      this.#sink(JSON.stringify(record));
      return;
    }
    const { request_id: requestId, ...rest } = all;
    const prefix = requestId === undefined ? "" : `[${requestId}] `;
    const extra = Object.entries(rest).map(([key, value]) => ` ${key}=${textValue(value)}`).join("");
    this.#sink(`${time} ${level.padEnd(7)} ${prefix}${message}${extra}`);
  }
}
