/**
 * A small command-line flag parser for kebab-case options (JSR's @std/cli is out of reach and
 * node:util's parseArgs has no typed values nor argparse's `nargs="*"` lists the seed server uses).
 *
 * Forms: `--name value`, `--name=value`, `-x value`; booleans as `--flag`, `--flag=false`; lists as
 * `--list a b c` (values up to the next flag), repeated `--list a --list b`, or `--list=a`; `append`
 * options take exactly one value per occurrence (`--stop a --stop -b`), as argparse's `action="append"`.
 *
 * @module
 */

import { parse as parseYaml } from "yaml";

/**
 * How a flag's value is read. `json` takes JSON or YAML (`--kwargs '{"a": 1}'`); `list` takes the values
 * up to the next option; `append` takes one value per occurrence (any value, even one starting with `-`).
 */
export type FlagKind = "string" | "int" | "number" | "bool" | "list" | "append" | "json";

/** One option. */
export interface FlagSpec {
  kind: FlagKind;
  /** One-letter alias, without the dash. */
  short?: string;
  /** Shown by `--help`. */
  help: string;
}

/** What {@link parseFlags} found. */
export interface ParsedFlags {
  /** Typed values by option name (only the ones given). */
  values: Record<string, unknown>;
  positionals: string[];
  help: boolean;
}

/** A bad command line; the message names the flag. */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

function convert(name: string, kind: FlagKind, raw: string): unknown {
  switch (kind) {
    case "string":
      return raw;
    case "int": {
      if (!/^-?\d+$/.test(raw.trim())) throw new FlagError(`--${name} expects an integer, got '${raw}'`);
      return Number(raw);
    }
    case "number": {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n)) {
        throw new FlagError(`--${name} expects a number, got '${raw}'`);
      }
      return n;
    }
    case "bool": {
      const v = raw.toLowerCase();
      if (["true", "1", "yes", "on"].includes(v)) return true;
      if (["false", "0", "no", "off"].includes(v)) return false;
      throw new FlagError(`--${name} expects true or false, got '${raw}'`);
    }
    case "json":
      try {
        return parseYaml(raw);
      } catch (err) {
        throw new FlagError(`--${name} expects JSON or YAML: ${(err as Error).message}`);
      }
    case "list":
    case "append":
      return [raw];
  }
}

/** Parses `argv` against `specs` (keyed by long name). Unknown flags are errors. */
export function parseFlags(argv: readonly string[], specs: Record<string, FlagSpec>): ParsedFlags {
  const byShort = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) if (spec.short) byShort.set(spec.short, name);
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  let help = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "--help" || arg === "-h") {
      help = true;
      continue;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    } else if (/^-[A-Za-z]$/.test(arg)) {
      name = byShort.get(arg[1]);
      if (!name) throw new FlagError(`unknown option ${arg}`);
    } else {
      positionals.push(arg);
      continue;
    }
    const spec = specs[name];
    if (!spec) throw new FlagError(`unknown option --${name}`);

    if (spec.kind === "bool") {
      values[name] = inline === undefined ? true : convert(name, "bool", inline);
      continue;
    }
    if (spec.kind === "list") {
      const list = (values[name] as string[] | undefined) ?? [];
      if (inline !== undefined) list.push(inline);
      else {
        // argparse nargs="*": take values until the next option.
        while (i + 1 < argv.length && !argv[i + 1].startsWith("-")) list.push(argv[++i]);
      }
      values[name] = list;
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      if (i + 1 >= argv.length) throw new FlagError(`--${name} needs a value`);
      raw = argv[++i];
    }
    if (spec.kind === "append") {
      values[name] = [...((values[name] as string[] | undefined) ?? []), raw];
      continue;
    }
    values[name] = convert(name, spec.kind, raw);
  }
  return { values, positionals, help };
}

/** Formats `--help` text for the options. */
export function formatHelp(usage: string, specs: Record<string, FlagSpec>): string {
  const lines = [usage, "", "Options:"];
  for (const [name, spec] of Object.entries(specs)) {
    const short = spec.short ? `-${spec.short}, ` : "    ";
    const value = spec.kind === "bool" ? "" : spec.kind === "list" ? " VALUE..." : " VALUE";
    const repeat = spec.kind === "append" ? " (repeatable)" : "";
    lines.push(`  ${short}--${name}${value}`.padEnd(40) + spec.help + repeat);
  }
  lines.push(`      --help`.padEnd(40) + "show this help");
  return lines.join("\n");
}
