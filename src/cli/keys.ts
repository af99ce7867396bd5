import { keyView } from '../http/routes/admin-routes.ts';
import { JSON_OPTION, type Command, type CommandGroup } from './command.ts';
import { withServices } from './context.ts';
import { CommandFailed } from './errors.ts';

// With a server (CLICKHOUSE_URL), a running service accepts a key made here at once: an unknown key
// makes it read the keys again before it answers 401. With the embedded engine the CLI cannot open the
// data directory while the service runs: use the admin API there (POST /v1/admin/keys).

const create: Command = {
  path: ['keys', 'create'],
  summary: 'create an ingest key; prints the key alone on the last line (shown once)',
  options: {
    name: { type: 'string', value: 'NAME', help: 'what the key is for (required)' },
    json: JSON_OPTION,
  },
  async run({ values, out }) {
    const name = typeof values.name === 'string' ? values.name.trim() : '';
    if (!name) throw new CommandFailed('keys create needs --name NAME (what the key is for)', 2);
    return withServices('keys create', async (s) => {
      await s.keys.refresh();
      const { record, key } = await s.keys.create(name);
      if (out.json) out.data({ ...keyView(record), key });
      else {
        out.line(`created ingest key ${record.keyId} (${record.name}); it is shown once, store it now:`);
        out.line(key);
      }
      return 0;
    });
  },
};

const list: Command = {
  path: ['keys', 'list'],
  summary: 'list ingest keys (never the keys themselves)',
  options: { json: JSON_OPTION },
  async run({ out }) {
    return withServices('keys list', async (s) => {
      await s.keys.refresh();
      const keys = s.keys.list().map(keyView);
      if (out.json) out.data(keys);
      else if (keys.length === 0) out.line('no ingest keys yet: billing-meter keys create --name NAME');
      else
        out.table(
          keys.map((k) => ({
            key_id: k.key_id,
            state: k.revoked_at ? 'revoked' : 'active',
            created: k.created_at,
            name: k.name,
          })),
        );
      return 0;
    });
  },
};

const revoke: Command = {
  path: ['keys', 'revoke'],
  summary: 'revoke an ingest key',
  args: 'KEY_ID',
  positionals: { min: 1, max: 1 },
  async run({ positionals, out }) {
    const id = positionals[0]!;
    return withServices('keys revoke', async (s) => {
      await s.keys.refresh();
      if (!(await s.keys.revoke(id)))
        throw new CommandFailed(`no ingest key ${id} (billing-meter keys list shows them)`);
      out.line(`revoked ${id}; running services refuse it within 5 seconds`);
      return 0;
    });
  },
};

export const keysCommands: CommandGroup = {
  name: 'keys',
  summary: 'ingest keys: what senders authenticate with',
  commands: [create, list, revoke],
};
