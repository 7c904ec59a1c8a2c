// Type-checks Grafana dashboard JSON files against @grafana/schema with `tsc --strict`.
//
//   node check.mjs [FILE.json ...]     (default: dashboards/*.json; `npm run check` from this folder)
//
// Each file becomes `export const dashboard: DashboardJson = <the file's text>;` in a temporary .ts
// file (see dashboard-types.ts): an object literal, so tsc reports unknown keys as well as wrong types.
// Errors are printed as FILE.json(line,col): ... and the exit code is 1; 0 when every file passes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const tsc = path.join(here, 'node_modules', 'typescript', 'bin', 'tsc');
const types = path.join(here, 'dashboard-types.ts');

let files = process.argv.slice(2);
if (files.length === 0) {
  const dir = path.join(here, 'dashboards');
  files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => path.join(dir, f));
}
files = files.map((f) => path.resolve(f));

const work = mkdtempSync(path.join(tmpdir(), 'sloguard-dashboards-'));
const prefix = 'export const dashboard: DashboardJson = ';
const sources = new Map(); // generated .ts -> dashboard .json
try {
  const importPath = path.relative(work, types).replace(/\\/g, '/').replace(/\.ts$/, '');
  files.forEach((file, i) => {
    const text = readFileSync(file, 'utf8');
    JSON.parse(text); // not JSON: fail here, with the parser's message
    const ts = path.join(work, `dashboard${i}.ts`);
    // Line 1 is the import, so line n of the .ts is line n - 1 of the .json.
    writeFileSync(ts, `import type { DashboardJson } from '${importPath}';\n${prefix}${text.trimEnd()};\n`);
    sources.set(ts, file);
  });
  const args = [
    tsc,
    '--strict',
    '--noEmit',
    '--pretty',
    'false',
    '--skipLibCheck',
    '--target',
    'es2022',
    '--module',
    'esnext',
    '--moduleResolution',
    'bundler',
    types,
    ...sources.keys(),
  ];
  const res = spawnSync(process.execPath, args, { encoding: 'utf8', cwd: here });
  if (res.error) {
    throw res.error;
  }
  let out = `${res.stdout}${res.stderr}`;
  for (const [ts, file] of sources) {
    // tsc prints paths relative to its cwd: map FILE.ts(line,col) back to the .json.
    const rel = path.relative(here, ts);
    out = out.replaceAll(new RegExp(`(?:${escape(ts)}|${escape(rel)})\\((\\d+),(\\d+)\\)`, 'g'), (_, l, c) => {
      const line = Number(l) - 1;
      const col = line === 1 ? Number(c) - prefix.length : Number(c);
      return `${path.relative(process.cwd(), file)}(${line},${col})`;
    });
  }
  process.stdout.write(out);
  if (res.status === 0) {
    console.log(`ok: ${files.length} dashboard(s) type-check against @grafana/schema`);
  }
  process.exitCode = res.status ?? 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}

function escape(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
