/**
 * Interleaved pairs for the benches: a reference and our code measured in turn, after a warm-up —
 * reference, ours, reference, ours … — and the ratio taken pair by pair.
 *
 * Why pairs: on this shared 2-core machine one side alone moves by ±50% between runs (the raw-insert
 * reference of bench:ingest went from 140k to 310k events/s), far more than the gaps the benches are
 * about. A pair measures both sides within seconds of each other, so a drift of the machine's speed
 * lands on both; the median of the pairs' ratios ignores one lucky or unlucky pair, and the spread
 * (min and max) says how noisy the run was. What a "measurement" is (seconds, events/s, an overhead)
 * and which way the ratio goes is the bench's choice: `ratio(reference, ours)`.
 *
 * Sizes: BENCH_PAIRS (default 3, at least 1 — fewer than 3 is for quick checks such as bench:growth,
 * whose figures are not ratios) and BENCH_WARMUP_ROUNDS (default 1) for every bench.
 */

export interface Pair<M> {
  reference: M;
  ours: M;
  ratio: number;
}

export interface PairsSummary<M> {
  pairs: Pair<M>[];
  ratio_median: number;
  ratio_min: number;
  ratio_max: number;
}

export interface PairsOptions<M> {
  /** Label of the two sides in the progress lines, e.g. "raw insert" and "service". */
  names: { reference: string; ours: string };
  /** One measurement of each side; `round` counts from 1 (0, -1 … are the warm-up rounds). */
  reference(round: number): Promise<M>;
  ours(round: number): Promise<M>;
  ratio(reference: M, ours: M): number;
  /** How a measurement is printed in the progress lines (stderr). */
  show(measurement: M): string;
  pairs?: number;
  warmupRounds?: number;
}

function envCount(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min)
    throw new Error(`${name} must be an integer >= ${min}, got ${raw}`);
  return n;
}

export const PAIRS = envCount('BENCH_PAIRS', 3, 1);
export const WARMUP_ROUNDS = envCount('BENCH_WARMUP_ROUNDS', 1, 0);

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const round3 = (x: number) => Number(x.toFixed(3));

/**
 * Runs the warm-up rounds (reference then ours, results dropped), then the pairs, printing one line per
 * round on stderr (stdout keeps the bench's report, ending in its JSON line).
 */
export async function interleavedPairs<M>(options: PairsOptions<M>): Promise<PairsSummary<M>> {
  const pairs = options.pairs ?? PAIRS;
  const warmupRounds = options.warmupRounds ?? WARMUP_ROUNDS;
  const { names, show } = options;
  for (let w = 0; w < warmupRounds; w++) {
    const round = w - warmupRounds + 1;
    const reference = await options.reference(round);
    const ours = await options.ours(round);
    console.error(
      `warm-up ${w + 1}/${warmupRounds}: ${names.reference} ${show(reference)}, ${names.ours} ${show(ours)} (not counted)`,
    );
  }
  const out: Pair<M>[] = [];
  for (let round = 1; round <= pairs; round++) {
    const reference = await options.reference(round);
    const ours = await options.ours(round);
    const ratio = options.ratio(reference, ours);
    out.push({ reference, ours, ratio });
    console.error(
      `pair ${round}/${pairs}: ${names.reference} ${show(reference)}, ${names.ours} ${show(ours)}, ratio ${ratio.toFixed(3)}`,
    );
  }
  return summarise(out);
}

export function summarise<M>(pairs: Pair<M>[]): PairsSummary<M> {
  const ratios = pairs.map((p) => p.ratio);
  return {
    pairs,
    ratio_median: round3(median(ratios)),
    ratio_min: round3(Math.min(...ratios)),
    ratio_max: round3(Math.max(...ratios)),
  };
}

/** The fields every bench's JSON line carries about its pairs. */
export function pairsFields(summary: PairsSummary<unknown>): {
  ratio_median: number;
  ratio_min: number;
  ratio_max: number;
  pairs: number;
  ratios: number[];
} {
  return {
    ratio_median: summary.ratio_median,
    ratio_min: summary.ratio_min,
    ratio_max: summary.ratio_max,
    pairs: summary.pairs.length,
    ratios: summary.pairs.map((p) => round3(p.ratio)),
  };
}

/** One line for the human part of a report: "ratio median 0.61 (0.55–0.66 over 3 pairs)". */
export function pairsLine(summary: PairsSummary<unknown>): string {
  return (
    `median ${summary.ratio_median.toFixed(3)} (min ${summary.ratio_min.toFixed(3)}, max ` +
    `${summary.ratio_max.toFixed(3)} over ${summary.pairs.length} pairs: ` +
    `${summary.pairs.map((p) => p.ratio.toFixed(3)).join(', ')})`
  );
}

/** Median of one measured field over the pairs, for the bench's headline numbers. */
export function medianOf<M>(pairs: readonly Pair<M>[], side: 'reference' | 'ours', field: (m: M) => number) {
  return median(pairs.map((p) => field(p[side])));
}
