import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, setCsrfToken } from './api.ts';
import { Customer, Customers } from './pages/customer.tsx';
import { Explorer } from './pages/explorer.tsx';
import { Keys } from './pages/keys.tsx';
import { Meter, Meters } from './pages/meters.tsx';
import { Overview } from './pages/overview.tsx';
import { Portal } from './pages/portal.tsx';
import { Stripe } from './pages/stripe.tsx';
import { Link, useLocation } from './router.tsx';
import './style.css';

type Session = { state: 'checking' } | { state: 'out'; error?: string } | { state: 'in' };

function Login(props: { error?: string; onIn: () => void }) {
  const [error, setError] = useState(props.error);
  return (
    <main class="login">
      <h1>billing-meter</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const key = String(new FormData(e.currentTarget).get('key') ?? '');
          // The key goes in the body of one request; the server answers with an httpOnly cookie.
          api<{ csrf_token: string }>('POST', '/v1/admin/session', { key }).then(
            (s) => {
              setCsrfToken(s.csrf_token);
              props.onIn();
            },
            (err: Error) => setError(err.message),
          );
        }}
      >
        <label>
          Admin key <input name="key" type="password" autocomplete="current-password" required />
        </label>{' '}
        <button type="submit">Log in</button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

function Page(props: { path: string; params: URLSearchParams }) {
  const parts = props.path.split('/').slice(2).map(decodeURIComponent);
  switch (parts[0]) {
    case undefined:
    case 'overview':
      return <Overview />;
    case 'explorer':
      return <Explorer params={props.params} />;
    case 'meters':
      return parts[1] ? <Meter name={parts[1]} params={props.params} /> : <Meters />;
    case 'customers':
      return parts[1] ? <Customer id={parts[1]} /> : <Customers />;
    case 'stripe':
      return <Stripe params={props.params} />;
    case 'keys':
      return <Keys />;
    default:
      return <p class="error">No page at {props.path}.</p>;
  }
}

function Admin() {
  const { path, params } = useLocation();
  const [session, setSession] = useState<Session>({ state: 'checking' });
  useEffect(() => {
    api<{ csrf_token: string }>('GET', '/v1/admin/session').then(
      (s) => {
        setCsrfToken(s.csrf_token);
        setSession({ state: 'in' });
      },
      (err: unknown) =>
        setSession({
          state: 'out',
          error:
            err instanceof ApiError && err.status !== 400 && err.status !== 401 ? err.message : undefined,
        }),
    );
  }, []);
  if (session.state === 'checking') return <p role="status">Loading…</p>;
  if (session.state === 'out')
    return <Login error={session.error} onIn={() => setSession({ state: 'in' })} />;
  const nav: [string, string][] = [
    ['/ui/overview', 'Overview'],
    ['/ui/explorer', 'Explorer'],
    ['/ui/meters', 'Meters'],
    ['/ui/customers', 'Customers'],
    ['/ui/stripe', 'Stripe'],
    ['/ui/keys', 'Keys'],
  ];
  return (
    <>
      <nav>
        <strong>billing-meter</strong>
        {nav.map(([href, label]) => (
          <Link key={href} href={href} class={path.startsWith(href) ? 'active' : ''}>
            {label}
          </Link>
        ))}
        <button
          onClick={() =>
            api('DELETE', '/v1/admin/session').then(() => {
              setCsrfToken(undefined);
              setSession({ state: 'out' });
            })
          }
        >
          Log out
        </button>
      </nav>
      <main>
        <Page path={path} params={params} />
      </main>
    </>
  );
}

function App() {
  const { path } = useLocation();
  return path === '/ui/portal' ? <Portal /> : <Admin />;
}

render(<App />, document.getElementById('app')!);
