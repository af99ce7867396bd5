// Faults a test queues per path. Each matching request consumes one; the first queued fault whose
// pattern matches wins. Patterns are exact paths, paths with `:param` / `*` segments, or RegExps.

export type FaultKind = 'rate_limit' | 'server_error' | 'timeout' | 'drop_after_apply';

export interface FaultOptions {
  /** For `timeout`: how long the request is held before its socket is destroyed (default 30 s). */
  ms?: number;
}

interface QueuedFault {
  pattern: string | RegExp;
  kind: FaultKind;
  remaining: number;
  options: FaultOptions;
}

export interface ActiveFault {
  kind: FaultKind;
  options: FaultOptions;
}

function matches(pattern: string | RegExp, path: string): boolean {
  if (pattern instanceof RegExp) return pattern.test(path);
  const want = pattern.split('/');
  const got = path.split('/');
  if (want.length !== got.length) return false;
  return want.every((segment, i) => segment === '*' || segment.startsWith(':') || segment === got[i]);
}

export class FaultInjector {
  private readonly queue: QueuedFault[] = [];

  /** Queue `count` faults of `kind` for requests whose path matches `pattern`. */
  next(pattern: string | RegExp, kind: FaultKind, count = 1, options: FaultOptions = {}): void {
    this.queue.push({ pattern, kind, remaining: count, options });
  }

  clear(): void {
    this.queue.length = 0;
  }

  pending(): number {
    return this.queue.reduce((n, f) => n + f.remaining, 0);
  }

  take(path: string): ActiveFault | undefined {
    const index = this.queue.findIndex((f) => matches(f.pattern, path));
    const fault = this.queue[index];
    if (fault === undefined) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.queue.splice(index, 1);
    return { kind: fault.kind, options: fault.options };
  }
}
