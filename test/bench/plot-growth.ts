// npm run bench:growth:plot — renders bench:growth's JSON as a small PNG for the README:
// vega-lite spec → vega (SVG, headless: no canvas) → @resvg/resvg-js (PNG). Nothing is drawn by hand:
// every mark is a value from the JSON.
//
//   npm run bench:growth:plot [-- IN.json [OUT.png]]   (defaults: test/bench/growth/growth.json, growth.png)
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';

interface Growth {
  ingest: { senders: number; events_per_s: number; ack_p99_ms: number }[];
  meters: { logs: number; seconds: number; reference_seconds: number }[];
  sync: { customers: number; run_seconds: number }[];
  bytes_per_event: number;
  service_peak_rss_mb_ingest: number;
  evaluation_peak_rss_mb: number;
}

const [input, output] = [
  process.argv[2] ?? fileURLToPath(new URL('./growth/growth.json', import.meta.url)),
  process.argv[3] ?? fileURLToPath(new URL('./growth/growth.png', import.meta.url)),
];
const growth = JSON.parse(await readFile(input, 'utf8')) as Growth;

const panel = { width: 210, height: 150 };
const spec: TopLevelSpec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  background: 'white',
  title: {
    text: 'billing-meter: cost as work grows (npm run bench:growth)',
    subtitle: `${growth.bytes_per_event} bytes/event on disk; peak RSS ${growth.service_peak_rss_mb_ingest} MB ingesting, ${growth.evaluation_peak_rss_mb} MB evaluating`,
  },
  resolve: { legend: { color: 'independent' } },
  hconcat: [
    {
      ...panel,
      title: 'ingest: events/s into ClickHouse',
      data: { values: growth.ingest },
      mark: { type: 'line', point: true },
      encoding: {
        x: {
          field: 'senders',
          type: 'quantitative',
          scale: { type: 'log', base: 2 },
          axis: { values: growth.ingest.map((i) => i.senders), format: 'd' },
          title: 'concurrent senders',
        },
        y: { field: 'events_per_s', type: 'quantitative', title: 'events/s' },
      },
    },
    {
      ...panel,
      title: 'meters: evaluation seconds',
      data: {
        values: growth.meters.flatMap((m) => [
          { logs: m.logs, seconds: m.seconds, side: 'evaluateBetween' },
          { logs: m.logs, seconds: m.reference_seconds, side: 'GROUP BY reference' },
        ]),
      },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'logs', type: 'quantitative', title: 'request logs' },
        y: { field: 'seconds', type: 'quantitative', title: 'seconds' },
        color: { field: 'side', type: 'nominal', legend: { orient: 'bottom', title: null } },
      },
    },
    {
      ...panel,
      title: 'sync: seconds per run',
      data: { values: growth.sync },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'customers', type: 'quantitative', title: 'customers (2 meters × 1 h)' },
        y: { field: 'run_seconds', type: 'quantitative', title: 'seconds' },
      },
    },
  ],
};

const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
const svg = await view.toSVG();
view.finalize();
const png = new Resvg(svg, { fitTo: { mode: 'zoom', value: 1.5 }, font: { loadSystemFonts: true } })
  .render()
  .asPng();
await writeFile(output, png);
console.log(`${output}: ${png.length} bytes`);
