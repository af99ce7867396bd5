import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { Show, useLoad } from '../load.tsx';

interface Key {
  key_id: string;
  name: string;
  created_at: string;
  revoked_at: string | null;
}

export function Keys() {
  const [list, reload] = useLoad(() => api<{ keys: Key[] }>('GET', '/v1/admin/keys'), []);
  const [created, setCreated] = useState<{ key: string; name: string }>();
  const [error, setError] = useState<string>();
  return (
    <section>
      <h1>Ingest keys</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const form = e.currentTarget;
          const name = String(new FormData(form).get('name') ?? '');
          setError(undefined);
          api<{ key: string; name: string }>('POST', '/v1/admin/keys', { name }).then(
            (k) => {
              setCreated(k);
              form.reset();
              reload();
            },
            (err: Error) => setError(err.message),
          );
        }}
      >
        <input name="name" placeholder="what the key is for" required />{' '}
        <button type="submit">Create key</button>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {created && (
        <div class="created" data-testid="created-key">
          <p>The key for {created.name}, shown only this once (it is stored as a hash):</p>
          <code data-testid="new-key">{created.key}</code>{' '}
          <button onClick={() => void navigator.clipboard?.writeText(created.key)}>Copy</button>
        </div>
      )}
      <Show value={list}>
        {(l) => (
          <table data-testid="keys">
            <thead>
              <tr>
                <th>name</th>
                <th>id</th>
                <th>created</th>
                <th>state</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {l.keys.map((k) => (
                <tr key={k.key_id} data-key-id={k.key_id}>
                  <td>{k.name}</td>
                  <td>{k.key_id}</td>
                  <td>{k.created_at}</td>
                  <td class="state">{k.revoked_at ? `revoked ${k.revoked_at}` : 'active'}</td>
                  <td>
                    {!k.revoked_at && (
                      <button
                        onClick={() =>
                          api('DELETE', `/v1/admin/keys/${encodeURIComponent(k.key_id)}`).then(
                            reload,
                            (err: Error) => setError(err.message),
                          )
                        }
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Show>
    </section>
  );
}
