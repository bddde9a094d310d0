// The native layers stay honest: compute code (native/core, native/ops, native/nn, native/models)
// never reaches N-API or a binding/ header, directly or through the local headers it includes (only
// an op's binding.cc may), and every op folder under native/ops holds the same set of files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const native = path.join(root, 'native');
const opsDir = path.join(native, 'ops');
const rel = (p: string) => path.relative(root, p);

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/** The `#include "..."` / `#include <...>` targets of a file (macro includes are skipped). */
function includes(file: string): { name: string; quoted: boolean }[] {
  const out: { name: string; quoted: boolean }[] = [];
  for (const m of fs.readFileSync(file, 'utf8').matchAll(/^[ \t]*#[ \t]*include[ \t]*(["<])([^">]+)[">]/gm)) out.push({ name: m[2], quoted: m[1] === '"' });
  return out;
}

/** A quoted include resolved as the compiler does here: next to the including file, then under native/ (-Inative). */
function resolveLocal(from: string, name: string): string | null {
  for (const base of [path.dirname(from), native]) {
    const p = path.resolve(base, name);
    if (fs.existsSync(p) && fs.statSync(p).isFile()) return p;
  }
  return null;
}

const isBinding = (p: string) => !path.relative(path.join(native, 'binding'), p).startsWith('..');

/** Chains (file -> ... -> offending include) by which `file` reaches napi.h or a binding/ header. */
function napiReaches(file: string): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const visit = (f: string, chain: string[]) => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const inc of includes(f)) {
      const here = [...chain, `#include ${inc.quoted ? `"${inc.name}"` : `<${inc.name}>`}`];
      if (path.basename(inc.name) === 'napi.h' || path.basename(inc.name) === 'napi-inl.h') {
        found.push(here.join(' -> '));
        continue;
      }
      if (!inc.quoted) continue;
      const target = resolveLocal(f, inc.name);
      if (target === null) {
        if (/(^|\/)binding\//.test(inc.name)) found.push(here.join(' -> '));
        continue;
      }
      if (isBinding(target)) {
        found.push(here.join(' -> '));
        continue;
      }
      visit(target, [...here.slice(0, -1), rel(target)]);
    }
  };
  visit(file, [rel(file)]);
  return found;
}

const opFolders = () => fs.readdirSync(opsDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
const isOpBinding = (p: string) => {
  const r = path.relative(opsDir, p).split(path.sep);
  return r.length === 2 && r[1] === 'binding.cc';
};

describe('native layers', () => {
  it('no compute file (native/core, native/ops except each op binding.cc, native/nn, native/models, native/distributed) reaches napi.h or a binding/ header', () => {
    const files = ['core', 'ops', 'nn', 'models', 'distributed'].flatMap((d) => walk(path.join(native, d))).filter((f) => !isOpBinding(f));
    expect(files.length).toBeGreaterThan(10);
    const offences = files.flatMap(napiReaches);
    expect(offences).toEqual([]);
  });

  it('native/ops holds only op folders, and every op folder has the same file set', () => {
    const loose = fs.readdirSync(opsDir, { withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => e.name);
    expect(loose).toEqual([]);
    const ops = opFolders();
    expect(ops.length).toBeGreaterThanOrEqual(4);
    const sets = Object.fromEntries(
      ops.map((op) => [op, fs.readdirSync(path.join(opsDir, op)).map((f) => (f === `${op}.h` ? '<op>.h' : f === `${op}.cc` ? '<op>.cc' : f)).sort()]),
    );
    for (const op of ops) {
      expect(sets[op], op).toEqual(expect.arrayContaining(['<op>.h', '<op>.cc', 'cpu.cc', 'cuda.cu', 'cuda.cc', 'binding.cc']));
      expect(sets[op], `${op} vs ${ops[0]}`).toEqual(sets[ops[0]]);
    }
  });

  it('the check sees every op binding.cc reach binding/ (so it can see an offence)', () => {
    for (const op of opFolders()) expect(napiReaches(path.join(opsDir, op, 'binding.cc')).length, op).toBeGreaterThan(0);
  });
});
