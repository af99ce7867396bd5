import { writeFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openApiDocument } from './document.ts';

/**
 * openapi.json at the repository root: the document as GET /openapi.json serves it, for readers and
 * client generators that want it without a running service. `npm run openapi` writes it; the test
 * test/unit/http/openapi.test.ts fails while the committed file differs from this text (so it is kept
 * out of prettier: it is compared byte for byte).
 */
export const OPENAPI_FILE = fileURLToPath(new URL('../../../openapi.json', import.meta.url));

export function openApiText(): string {
  return `${JSON.stringify(openApiDocument(), null, 2)}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await writeFile(OPENAPI_FILE, openApiText());
  console.log(`wrote ${OPENAPI_FILE}`);
}
