import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

export type Loaded<T> = { state: 'loading' } | { state: 'error'; message: string } | { state: 'ok'; data: T };

/**
 * Loads again whenever a key changes; answers of a superseded load are dropped. A render whose keys
 * differ from those of the value held (the URL changed, the effect has not run yet) is already
 * 'loading': a page never shows the last URL's data under the new one, not even for a frame.
 */
export function useLoad<T>(load: () => Promise<T>, keys: unknown[]): [Loaded<T>, () => void] {
  const [tick, setTick] = useState(0);
  const current = [...keys, tick];
  const [held, setHeld] = useState<{ keys: unknown[]; value: Loaded<T> }>({
    keys: current,
    value: { state: 'loading' },
  });
  useEffect(() => {
    let live = true;
    setHeld({ keys: current, value: { state: 'loading' } });
    load().then(
      (data) => live && setHeld({ keys: current, value: { state: 'ok', data } }),
      (err: unknown) =>
        live &&
        setHeld({
          keys: current,
          value: { state: 'error', message: err instanceof Error ? err.message : String(err) },
        }),
    );
    return () => {
      live = false;
    };
  }, current);
  const same = held.keys.length === current.length && held.keys.every((k, i) => Object.is(k, current[i]));
  return [same ? held.value : { state: 'loading' }, () => setTick((t) => t + 1)];
}

export function Show<T>(props: { value: Loaded<T>; children: (data: T) => ComponentChildren }) {
  if (props.value.state === 'loading')
    return (
      <p class="loading" role="status">
        Loading…
      </p>
    );
  if (props.value.state === 'error')
    return (
      <p class="error" role="alert">
        {props.value.message}
      </p>
    );
  return <>{props.children(props.value.data)}</>;
}
