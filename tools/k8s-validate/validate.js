#!/usr/bin/env node
// Offline validation of Kubernetes manifests against the Kubernetes API
// schema, with no cluster and no network. Used by
// tests/integration/test_deploy.py on the output of `kubectl kustomize`.
//
//   node tools/k8s-validate/validate.js FILE.yaml...   (or "-" for stdin)
//   node tools/k8s-validate/validate.js --dump FILE...  (the objects as JSON)
//
// Every YAML document must be a Kubernetes object of a built-in kind, and
// passes two independent checks:
//
//  1. kubernetes-models: the API's OpenAPI schema compiled to validators
//     (ajv): required fields, value types, enums, formats.
//  2. kubernetes-types + the TypeScript compiler: each object is type-checked
//     as an object literal of the kind's API type, which rejects any field
//     the API does not know (a typo such as `readinesProbe`) at any depth,
//     as `kubectl --validate=strict` would, and wrong value types.
//
// Prints one line per problem ("SOURCE: Kind/name: problem") and a summary
// line; exit status 0 when every object is valid, 1 when any is not, 2 on a
// usage or input error.
'use strict';

const fs = require('fs');
const path = require('path');
const YAML = require('yaml');
const ts = require('typescript');

function usage() {
  process.stderr.write('usage: validate.js [--dump] FILE.yaml... (- for standard input)\n');
  process.exit(2);
}

// ------------------------------------------------------------------ input

function readDocuments(files) {
  const docs = [];
  const problems = [];
  for (const file of files) {
    let text;
    try {
      text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
    } catch (e) {
      process.stderr.write(`k8s-validate: ${file}: ${e.message}\n`);
      process.exit(2);
    }
    const label = file === '-' ? '<stdin>' : file;
    YAML.parseAllDocuments(text, { uniqueKeys: true }).forEach((doc, i) => {
      const where = `${label}#${i + 1}`;
      if (doc.errors.length) {
        for (const err of doc.errors) problems.push(`${where}: YAML: ${err.message.split('\n')[0]}`);
        return;
      }
      const obj = doc.toJS();
      if (obj === null || obj === undefined) return; // empty document
      // The API server decodes base64 ("format: byte") as Go does, skipping
      // line breaks; kustomize folds long values into several lines.
      if (obj && obj.kind === 'Secret' && obj.data && typeof obj.data === 'object') {
        for (const k of Object.keys(obj.data)) {
          if (typeof obj.data[k] === 'string') obj.data[k] = obj.data[k].replace(/[\r\n]/g, '');
        }
      }
      docs.push({ where, obj });
    });
  }
  return { docs, problems };
}

// --------------------------------------------------------- kind lookups

// "apps/v1" -> { group: "apps", version: "v1" }; "v1" -> core group "".
function splitApiVersion(apiVersion) {
  const slash = apiVersion.indexOf('/');
  return slash < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

// The kubernetes-models class for apiVersion/kind, or null.
function modelClass(apiVersion, kind) {
  const { group, version } = splitApiVersion(apiVersion);
  const mod = group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
  let exports;
  try {
    exports = require(mod);
  } catch (e) {
    return null;
  }
  const cls = exports[kind];
  return typeof cls === 'function' && cls.apiVersion === apiVersion && cls.kind === kind ? cls : null;
}

// The kubernetes-types module ("kubernetes-types/apps/v1") that declares
// apiVersion/kind, or null. Its files name groups by their first label.
function typesModule(apiVersion, kind) {
  const { group, version } = splitApiVersion(apiVersion);
  const dir = group ? group.split('.')[0] : 'core';
  const mod = `kubernetes-types/${dir}/${version}`;
  let file;
  try {
    file = require.resolve(`${mod}.d.ts`);
  } catch (e) {
    return null;
  }
  const src = fs.readFileSync(file, 'utf8');
  // The interface must be the kind itself (its `kind?: "Kind"` field pins it).
  const start = src.indexOf(`export interface ${kind} {`);
  if (start < 0) return null;
  const end = src.indexOf('\n}\n', start);
  return src.slice(start, end).includes(`kind?: "${kind}";`) ? mod : null;
}

// ------------------------------------------------------------ check 1

function checkModels(docs, problems) {
  for (const d of docs) {
    const cls = modelClass(d.obj.apiVersion, d.obj.kind);
    if (!cls) {
      d.unknown = true;
      problems.push(`${d.where}: ${d.id}: no schema for apiVersion ${d.obj.apiVersion} kind ${d.obj.kind}`);
      continue;
    }
    try {
      new cls(d.obj).validate();
    } catch (e) {
      const errs = e.errors || e.details || [];
      if (Array.isArray(errs) && errs.length) {
        for (const x of errs) {
          const at = x.instancePath || x.dataPath || '';
          problems.push(`${d.where}: ${d.id}: schema: ${at || '/'} ${x.message}${
            x.params && x.params.allowedValues ? ` (${x.params.allowedValues.join(', ')})` : ''}`);
        }
      } else {
        problems.push(`${d.where}: ${d.id}: schema: ${String(e.message).split('\n').join('; ')}`);
      }
    }
  }
}

// ------------------------------------------------------------ check 2

function checkTypes(docs, problems) {
  const lines = [];
  const ranges = []; // [firstLine, lastLine, doc]
  const imports = new Map();
  const body = [];
  docs.forEach((d, i) => {
    if (d.unknown) return;
    const mod = typesModule(d.obj.apiVersion, d.obj.kind);
    if (!mod) {
      problems.push(`${d.where}: ${d.id}: no API type for apiVersion ${d.obj.apiVersion} kind ${d.obj.kind}`);
      return;
    }
    if (!imports.has(mod)) imports.set(mod, `T${imports.size}`);
    const json = JSON.stringify(d.obj, null, 2).split('\n');
    body.push({ d, text: [`const o${i}: ${imports.get(mod)}.${d.obj.kind} = ${json[0]}`, ...json.slice(1)] });
  });
  for (const [mod, alias] of imports) lines.push(`import type * as ${alias} from ${JSON.stringify(mod)};`);
  for (const b of body) {
    const first = lines.length;
    lines.push(...b.text);
    lines[lines.length - 1] += ';';
    ranges.push([first, lines.length - 1, b.d]);
  }
  lines.push('export {};');
  if (!body.length) return;

  // A virtual source file beside this script, so `kubernetes-types` resolves
  // from this directory's node_modules.
  const fileName = path.join(__dirname, '__manifests__.ts');
  const source = lines.join('\n') + '\n';
  const options = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2020,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => {
    if (path.resolve(name) === fileName) return ts.createSourceFile(name, source, lang, true);
    // The API server takes a resource quantity as a string or a number
    // (`cpu: 2`; OpenAPI x-kubernetes-int-or-string), kubernetes-types
    // declares it string only.
    if (/kubernetes-types[\\/]api[\\/]resource\.d\.ts$/.test(name)) {
      const text = fs.readFileSync(name, 'utf8')
        .replace('export type Quantity = string;', 'export type Quantity = string | number;');
      return ts.createSourceFile(name, text, lang, true);
    }
    return getSourceFile(name, lang, ...rest);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => path.resolve(name) === fileName || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (path.resolve(name) === fileName ? source : readFile(name));

  const program = ts.createProgram([fileName], options, host);
  const diags = ts.getPreEmitDiagnostics(program);
  for (const diag of diags) {
    const msg = ts.flattenDiagnosticMessageText(diag.messageText, '\n').split('\n');
    if (!diag.file || path.resolve(diag.file.fileName) !== fileName) {
      problems.push(`k8s-validate: internal: ${msg.join('; ')}`);
      continue;
    }
    const { line } = diag.file.getLineAndCharacterOfPosition(diag.start);
    const hit = ranges.find(([a, b]) => line >= a && line <= b);
    // The JSON path of the offending line: the keys of the lines above it
    // with less indentation.
    let where = '';
    if (hit) {
      const keys = [];
      let indent = lines[line].search(/\S/);
      const own = lines[line].match(/^\s*"([^"]+)":/);
      if (own) keys.unshift(own[1]);
      for (let k = line - 1; k >= hit[0] && indent > 0; k--) {
        const ind = lines[k].search(/\S/);
        if (ind < indent) {
          const m = lines[k].match(/^\s*"([^"]+)":/);
          if (m) keys.unshift(m[1]);
          else if (/^\s*[[{]\s*$/.test(lines[k]) || /^\s*\{$/.test(lines[k])) keys.unshift('[]');
          indent = ind;
        }
      }
      where = '/' + keys.join('/');
    }
    // TypeScript's first line names the problem; the last, the innermost cause.
    const text = msg.length > 1 ? `${msg[0].trim()} (${msg[msg.length - 1].trim()})` : msg[0];
    problems.push(`${hit ? hit[2].where : '?'}: ${hit ? hit[2].id : '?'}: type: ${where} ${text}`);
  }
}

// ------------------------------------------------------------------ main

function main() {
  let files = process.argv.slice(2);
  if (!files.length || files.includes('-h') || files.includes('--help')) usage();
  // --dump: print the documents as one JSON array and stop (lets tests read
  // the YAML without a YAML library of their own).
  const dump = files[0] === '--dump';
  if (dump) files = files.slice(1);
  if (!files.length) usage();
  const { docs, problems } = readDocuments(files);
  if (dump) {
    for (const p of problems) process.stderr.write(p + '\n');
    process.stdout.write(JSON.stringify(docs.map((d) => d.obj)) + '\n');
    process.exit(problems.length ? 1 : 0);
  }

  for (const d of docs) {
    const o = d.obj;
    const name = o && o.metadata && (o.metadata.name || o.metadata.generateName);
    d.id = `${(o && o.kind) || '?'}/${name || '?'}`;
    if (typeof o !== 'object' || Array.isArray(o)) {
      problems.push(`${d.where}: not a Kubernetes object (a YAML mapping)`);
      d.unknown = true;
    } else if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') {
      problems.push(`${d.where}: ${d.id}: apiVersion and kind are required`);
      d.unknown = true;
    } else if (!name) {
      problems.push(`${d.where}: ${d.id}: metadata.name (or generateName) is required`);
    }
  }
  const objects = docs.filter((d) => !d.unknown);
  checkModels(objects, problems);
  checkTypes(objects, problems);

  for (const p of problems) process.stdout.write(p + '\n');
  process.stdout.write(
    `k8s-validate: ${docs.length} objects, ${problems.length ? `${problems.length} problems` : 'all valid'}\n`);
  process.exit(problems.length ? 1 : 0);
}

main();
