// Stands in for bin/bkp when GNU time is not installed: runs the CLI in this process and, on exit,
// writes the peak RSS (KiB, process.resourceUsage().maxRSS) to $BKP_BENCH_RSS_FILE.
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

process.on('exit', () => {
  writeFileSync(process.env.BKP_BENCH_RSS_FILE, `${process.resourceUsage().maxRSS}\n`);
});
await import(pathToFileURL(process.env.BKP_BENCH_CLI).href);
