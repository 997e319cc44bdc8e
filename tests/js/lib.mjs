// Shared helpers for the Node.js client flow scripts in this folder.
//
// Each flow is run as `node tests/js/<flow>.mjs <rpcUrl> <privateKeyHex>`, prints one
// JSON object on stdout and exits 0, or prints a clear error on stderr and exits
// non-zero. A hard timeout makes sure a flow never hangs.

import { readFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DEFAULT_TIMEOUT_MS = 60_000;

/** Thrown by check(); its message is what the flow prints on failure. */
export class FlowAssertionError extends Error {
  constructor(message) {
    super(message);
    this.name = "FlowAssertionError";
  }
}

/** Fails the flow with `message` unless `condition` holds. */
export function check(condition, message) {
  if (!condition) throw new FlowAssertionError(message);
}

/** Fails unless `actual === expected` (works for bigint, string, number). */
export function checkEqual(actual, expected, what) {
  check(actual === expected, `${what}: expected ${String(expected)}, got ${String(actual)}`);
}

/** Parses `<rpcUrl> <privateKeyHex>` from argv (exits 64 with usage on bad input). */
export function parseArgs(flowName) {
  const [rpcUrl, rawKey] = process.argv.slice(2);
  const usage = `usage: node tests/js/${flowName}.mjs <rpcUrl> <privateKeyHex>`;
  if (!rpcUrl || !rawKey) {
    process.stderr.write(`${flowName}: missing arguments\n${usage}\n`);
    process.exit(64);
  }
  if (!/^https?:\/\//.test(rpcUrl)) {
    process.stderr.write(`${flowName}: rpcUrl must be an http(s) URL, got ${rpcUrl}\n${usage}\n`);
    process.exit(64);
  }
  const privateKey = rawKey.startsWith("0x") ? rawKey : `0x${rawKey}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(privateKey)) {
    process.stderr.write(`${flowName}: privateKeyHex must be 32 bytes of hex\n${usage}\n`);
    process.exit(64);
  }
  return { rpcUrl, privateKey };
}

/** Reads a compiled artefact (see scripts/compile-contracts.mjs), e.g. "ConclaveToken". */
export function loadArtifact(name) {
  const candidates = [
    path.join(REPO_ROOT, "examples", "contracts", "build", `${name}.json`),
    path.join(REPO_ROOT, "tests", "contracts", "build", `${name}.json`),
  ];
  for (const file of candidates) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    return JSON.parse(text);
  }
  throw new Error(
    `no compiled artefact for ${name} (looked in examples/contracts/build and tests/contracts/build); run \`npm run compile\``,
  );
}

/** JSON.stringify that writes bigints as decimal strings. */
export function toJson(value) {
  return JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? v.toString() : v));
}

function describeError(error) {
  if (!(error instanceof Error)) return String(error);
  const lines = [];
  lines.push(error instanceof FlowAssertionError ? `assertion failed: ${error.message}` : error.stack ?? error.message);
  // ethers errors carry `code`, `shortMessage`, `info`; viem errors carry `details` and a `cause` chain.
  for (const key of ["code", "shortMessage", "details", "info"]) {
    if (error[key] !== undefined && error[key] !== null && !(key === "shortMessage" && error.message.includes(error[key]))) {
      let text;
      try {
        text = typeof error[key] === "string" ? error[key] : toJson(error[key]);
      } catch {
        text = String(error[key]);
      }
      lines.push(`${key}: ${text}`);
    }
  }
  if (error.cause && error.cause !== error) lines.push(`caused by: ${describeError(error.cause)}`);
  return lines.join("\n");
}

/**
 * Runs `main(args)` with a hard timeout. On success prints its result as one JSON
 * line on stdout and exits 0; on any failure prints the error on stderr and exits 1
 * (2 on timeout). `main` receives `{ rpcUrl, privateKey, setStep }`; `setStep(name)`
 * labels the current step so a failure says where it happened.
 */
export function runFlow(flowName, main, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const args = parseArgs(flowName);
  let step = "starting";
  const setStep = (name) => {
    step = name;
  };
  const timer = setTimeout(() => {
    process.stderr.write(
      `${flowName}: FAILED during step "${step}": timed out after ${timeoutMs / 1000} s ` +
        `(is the node at ${args.rpcUrl} up and mining?)\n`,
      () => process.exit(2),
    );
  }, timeoutMs);
  const finish = (code, stream, text) => {
    clearTimeout(timer);
    stream.write(text, () => process.exit(code));
  };
  Promise.resolve()
    .then(() => main({ ...args, setStep }))
    .then(
      (result) => finish(0, process.stdout, `${toJson(result)}\n`),
      (error) => finish(1, process.stderr, `${flowName}: FAILED during step "${step}": ${describeError(error)}\n`),
    );
}
