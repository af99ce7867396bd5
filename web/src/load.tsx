import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

export type Loaded<T> = { state: 'loading' } | { state: 'error'; message: string } | { state: 'ok'; data: T };

/** Loads again whenever a key changes; answers of a superseded load are dropped. */
export function useLoad<T>(load: () => Promise<T>, keys: unknown[]): [Loaded<T>, () => void] {
  const [value, setValue] = useState<Loaded<T>>({ state: 'loading' });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setValue({ state: 'loading' });
    load().then(
      (data) => live && setValue({ state: 'ok', data }),
      (err: unknown) =>
        live && setValue({ state: 'error', message: err instanceof Error ? err.message : String(err) }),
    );
    return () => {
      live = false;
    };
  }, [...keys, tick]);
  return [value, () => setTick((t) => t + 1)];
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
