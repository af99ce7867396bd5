/**
 * What commands print. A person at a terminal gets short lines, tables and progress (on stderr); a
 * pipe or `--json` gets only the data on stdout, so `billing-meter keys list --json | jq` just works.
 */
export interface Output {
  readonly json: boolean;
  /** stderr is a terminal: progress may be drawn. */
  readonly interactive: boolean;
  line(text?: string): void;
  data(value: unknown): void;
  table(rows: readonly Record<string, string | number>[]): void;
  /** A note for the person (stderr), never mixed into the data. */
  note(text: string): void;
  progress(label: string): Progress;
}

export interface Progress {
  /** `done` of `total` (when known) so far. */
  update(done: number, total?: number, unit?: string): void;
  done(): void;
}

export function createOutput(options: {
  json: boolean;
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  nowMs?: () => number;
}): Output {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const nowMs = options.nowMs ?? Date.now;
  const interactive = stderr.isTTY === true && !options.json;
  return {
    json: options.json,
    interactive,
    line: (text = '') => void stdout.write(`${text}\n`),
    data: (value) => void stdout.write(`${JSON.stringify(value, null, 2)}\n`),
    table: (rows) => void stdout.write(formatTable(rows)),
    note: (text) => void stderr.write(`${text}\n`),
    progress(label) {
      const started = nowMs();
      let drawn = false;
      return {
        update(done, total, unit = '') {
          if (!interactive) return;
          const seconds = (nowMs() - started) / 1000;
          const rate = seconds > 0 ? done / seconds : 0;
          const eta =
            total !== undefined && rate > 0 && done < total
              ? `, ${formatSeconds((total - done) / rate)} left`
              : '';
          const of = total !== undefined ? `/${total}` : '';
          stderr.write(
            `\r\u001b[2K${label}: ${done}${of}${unit ? ` ${unit}` : ''} (${Math.round(rate)}/s${eta})`,
          );
          drawn = true;
        },
        done() {
          if (drawn) stderr.write('\r\u001b[2K');
        },
      };
    },
  };
}

/** Columns padded to their widest cell; no borders (easy to read, easy to grep). */
export function formatTable(rows: readonly Record<string, string | number>[]): string {
  if (rows.length === 0) return '';
  const columns = Object.keys(rows[0]!);
  const cells = [columns, ...rows.map((r) => columns.map((c) => String(r[c] ?? '')))];
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return (
    cells
      .map((row) =>
        row
          .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
