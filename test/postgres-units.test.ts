import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { END_OF_ARCHIVE, fileHeader, padding } from '../src/providers/postgres/tar.js';
import { compressFilesArgs, planCompression } from '../src/providers/postgres/compression.js';
import type { PgTool } from '../src/providers/postgres/tools.js';

const pg = (major: number): PgTool => ({ path: `/usr/lib/postgresql/${major}/bin/pg_dump`, version: `${major}.3`, major });

describe('postgres: compression plans', () => {
  it('pg_dump 16+ compresses every method itself; 15 only gzip, and the stream does zstd and lz4', async () => {
    expect(await planCompression('zstd', 3, pg(16), 't')).toMatchObject({ by: 'pg_dump', pgDumpArgs: ['--compress=zstd:3'], suffix: '' });
    expect(await planCompression('lz4', 1, pg(17), 't')).toMatchObject({ by: 'pg_dump', pgDumpArgs: ['--compress=lz4:1'], suffix: '' });
    expect(await planCompression('gzip', 6, pg(16), 't')).toMatchObject({ by: 'pg_dump', pgDumpArgs: ['--compress=gzip:6'] });
    expect(await planCompression('gzip', 1, pg(15), 't')).toMatchObject({ by: 'pg_dump', pgDumpArgs: ['--compress=1'] });
    expect(await planCompression('none', undefined, pg(15), 't')).toMatchObject({ by: 'none', pgDumpArgs: ['--compress=0'] });
    const zstd = await planCompression('zstd', 1, pg(15), 't');
    expect(zstd).toMatchObject({ by: 'stream', pgDumpArgs: ['--compress=0'], suffix: '.zst', tool: { program: 'zstd' } });
    expect(compressFilesArgs(zstd, ['/a', '/b'])).toEqual(['-T0', '-1', '-q', '-c', '/a', '/b']);
    const lz4 = await planCompression('lz4', 1, pg(15), 't');
    expect(compressFilesArgs(lz4, ['/a', '/b'])).toEqual(['-1', '-q', '-m', '-c', '/a', '/b']);
  });
});

describe('postgres: the tar of a directory dump', () => {
  it('writes ustar members that GNU tar and node-tar read, sizes past 8 GiB in base-256', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bkp-tar-'));
    try {
      const members = [
        { name: 'toc.dat', data: Buffer.from('PGDMP toc') },
        { name: '3376.dat.gz', data: Buffer.alloc(1000, 7) },
        { name: 'blob_16400.dat', data: Buffer.alloc(512, 1) },
      ];
      const parts: Buffer[] = [];
      for (const m of members) parts.push(fileHeader(m.name, m.data.length, Date.UTC(2026, 10, 22) + 0.5), m.data, padding(m.data.length));
      parts.push(END_OF_ARCHIVE);
      const file = path.join(dir, 'x.tar');
      writeFileSync(file, Buffer.concat(parts));
      expect(execFileSync('tar', ['-tvf', file], { encoding: 'utf8' })).toMatch(/toc\.dat\n.*3376\.dat\.gz\n.*blob_16400\.dat\n$/);

      // A 9 GiB member: only the header matters to a reader that stops there.
      const big = fileHeader('3377.dat', 9 * 2 ** 30, Date.now());
      const seen: { path: string; size: number }[] = [];
      const parser = new Parser({ onReadEntry: (e: ReadEntry) => seen.push({ path: e.path, size: e.size }) });
      parser.write(big);
      expect(seen).toEqual([{ path: '3377.dat', size: 9 * 2 ** 30 }]);
      expect(() => fileHeader('x'.repeat(101), 1, 0)).toThrow(/too long/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
