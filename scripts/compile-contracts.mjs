#!/usr/bin/env node
// Compiles the project's Solidity sources with solc-js (from node_modules) and
// writes one JSON artefact per contract to <root>/build/<ContractName>.json,
// where <root> is examples/contracts, examples/purchase_orders or tests/contracts.
//
//   node scripts/compile-contracts.mjs           # (re)write the artefacts
//   node scripts/compile-contracts.mjs --check   # compile in memory, compare, exit 1 on any difference
//
// Only contracts defined in the project's own .sol files get artefacts; imported
// OpenZeppelin sources are resolved from node_modules and compiled alongside.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const NODE_MODULES = path.join(REPO_ROOT, "node_modules");
// Each root gets its own build/ folder; sources may sit in sub-folders of a root.
const SOURCE_ROOTS = ["examples/contracts", "examples/purchase_orders", "tests/contracts"];
const BUILD_DIR_NAME = "build";

// The settings every artefact is built with (recorded in each artefact).
const SETTINGS = {
  evmVersion: "prague",
  optimizer: { enabled: true, runs: 200 },
  viaIR: false,
};

function fail(message) {
  process.stderr.write(`compile-contracts: ${message}\n`);
  process.exit(1);
}

function loadSolc() {
  if (!existsSync(path.join(NODE_MODULES, "solc", "package.json"))) {
    fail("solc-js is not installed (node_modules/solc is missing). Run `npm ci` at the repository root first.");
  }
  const require = createRequire(path.join(REPO_ROOT, "package.json"));
  return require("solc");
}

/** Repo-relative POSIX path. */
function rel(absPath) {
  return path.relative(REPO_ROOT, absPath).split(path.sep).join("/");
}

/** All .sol files under `dir` (recursively, skipping build/ and node_modules/), sorted. */
function findSolFiles(dir) {
  const out = [];
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === BUILD_DIR_NAME || entry.name === "node_modules" || entry.name.startsWith(".")) continue;
      out.push(...findSolFiles(full));
    } else if (entry.isFile() && entry.name.endsWith(".sol")) {
      out.push(full);
    }
  }
  return out.sort();
}

/** Import callback: project files by repo-relative name, everything else from node_modules. */
function findImports(importPath) {
  if (importPath.split("/").includes("..") || path.isAbsolute(importPath)) {
    return { error: `refusing to import ${importPath}: use a repo-relative or package path` };
  }
  for (const base of [REPO_ROOT, NODE_MODULES]) {
    const candidate = path.join(base, importPath);
    if (existsSync(candidate)) {
      return { contents: readFileSync(candidate, "utf8") };
    }
  }
  return { error: `file not found: ${importPath} (looked in the repository and node_modules; run \`npm ci\`?)` };
}

/** Recursively sorts object keys so the JSON output does not depend on solc's key order. */
function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
    return out;
  }
  return value;
}

function hex(object) {
  if (typeof object !== "string") return "0x";
  return object.startsWith("0x") ? object : `0x${object}`;
}

function compile(solc, sourceFiles) {
  const sources = {};
  for (const file of sourceFiles) sources[rel(file)] = { content: readFileSync(file, "utf8") };
  const input = {
    language: "Solidity",
    sources,
    settings: {
      ...SETTINGS,
      outputSelection: {
        "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const diagnostics = output.errors ?? [];
  const errors = diagnostics.filter((d) => d.severity === "error");
  for (const d of diagnostics.filter((d) => d.severity !== "error")) {
    process.stderr.write(`${d.formattedMessage ?? d.message}\n`);
  }
  if (errors.length > 0) {
    fail(`solc reported ${errors.length} error(s):\n${errors.map((e) => e.formattedMessage ?? e.message).join("\n")}`);
  }
  return output;
}

/** Map of absolute artefact path -> file content, for every contract in the project's sources. */
function buildArtefacts(solc) {
  const artefacts = new Map();
  const rootsBySource = new Map();
  const allFiles = [];
  for (const root of SOURCE_ROOTS) {
    const rootDir = path.join(REPO_ROOT, root);
    for (const file of findSolFiles(rootDir)) {
      rootsBySource.set(rel(file), rootDir);
      allFiles.push(file);
    }
  }
  if (allFiles.length === 0) fail(`no .sol files found under ${SOURCE_ROOTS.join(", ")}`);

  const output = compile(solc, allFiles);
  const version = solc.version();
  for (const sourceName of [...rootsBySource.keys()].sort()) {
    const contracts = output.contracts?.[sourceName] ?? {};
    for (const contractName of Object.keys(contracts).sort()) {
      const c = contracts[contractName];
      const target = path.join(rootsBySource.get(sourceName), BUILD_DIR_NAME, `${contractName}.json`);
      if (artefacts.has(target)) {
        fail(`two contracts would write ${rel(target)}; contract names must be unique within ${rel(path.dirname(path.dirname(target)))}`);
      }
      const artefact = {
        contractName,
        sourceName,
        abi: sortKeys(c.abi),
        bytecode: hex(c.evm?.bytecode?.object),
        deployedBytecode: hex(c.evm?.deployedBytecode?.object),
        compiler: { version, settings: sortKeys(SETTINGS) },
      };
      artefacts.set(target, `${JSON.stringify(artefact, null, 2)}\n`);
    }
  }
  return artefacts;
}

/** Existing artefact files (absolute paths) in every root's build/ folder. */
function existingArtefacts() {
  const found = [];
  for (const root of SOURCE_ROOTS) {
    const buildDir = path.join(REPO_ROOT, root, BUILD_DIR_NAME);
    if (!existsSync(buildDir)) continue;
    for (const entry of readdirSync(buildDir, { withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith(".json")) found.push(path.join(buildDir, entry.name));
    }
  }
  return found.sort();
}

function main() {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== "--check");
  if (unknown.length > 0) fail(`unknown argument(s): ${unknown.join(" ")}\nusage: node scripts/compile-contracts.mjs [--check]`);
  const check = args.includes("--check");

  const solc = loadSolc();
  const artefacts = buildArtefacts(solc);
  const stale = existingArtefacts().filter((file) => !artefacts.has(file));

  if (check) {
    const problems = [];
    for (const [file, content] of artefacts) {
      if (!existsSync(file)) {
        problems.push(`missing: ${rel(file)}`);
      } else if (readFileSync(file, "utf8") !== content) {
        problems.push(`differs from its source: ${rel(file)}`);
      }
    }
    for (const file of stale) problems.push(`stale (no contract of that name in the sources): ${rel(file)}`);
    if (problems.length > 0) {
      fail(
        `contract artefacts are out of date (solc ${solc.version()}):\n` +
          problems.map((p) => `  - ${p}`).join("\n") +
          "\nRun `npm run compile` and commit the result.",
      );
    }
    process.stdout.write(`compile-contracts: all ${artefacts.size} artefacts are up to date (solc ${solc.version()}).\n`);
    return;
  }

  for (const [file, content] of artefacts) {
    mkdirSync(path.dirname(file), { recursive: true });
    const unchanged = existsSync(file) && readFileSync(file, "utf8") === content;
    if (!unchanged) writeFileSync(file, content);
    process.stdout.write(`${unchanged ? "unchanged" : "wrote    "} ${rel(file)}\n`);
  }
  for (const file of stale) {
    rmSync(file);
    process.stdout.write(`removed   ${rel(file)} (no contract of that name in the sources)\n`);
  }
}

main();
