/**
 * hearth's command line: `serve` runs the OpenAI-compatible server, `client` talks to one.
 *
 *   deno run -A main.ts serve [CONFIG.yaml] --model DIR [options]     (deno task serve)
 *   deno run -A main.ts client [options]                              (deno task client)
 *
 * Subcommands are imported lazily so that each loads only what it needs (the client never loads
 * the native library).
 *
 * @module
 */

const USAGE = `usage: hearth <command> [options]

commands:
  serve    run the OpenAI-compatible HTTP server (serve --help for options)
  client   talk to a running server`;

async function runClient(args: string[]): Promise<number> {
  const { main } = await import("./src/cli/client.ts");
  return (await main(args)) ?? 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case "serve": {
      const { serve } = await import("./src/cli/serve.ts");
      return await serve(args);
    }
    case "client":
      return await runClient(args);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`hearth: unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
