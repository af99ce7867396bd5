import type { IncomingMessage } from 'node:http';
import { createGunzip, createInflate, type Gunzip, type Inflate } from 'node:zlib';
import type { BodyKind } from '../collector/parse-body.ts';
import { DomainError } from '../errors.ts';

/**
 * Reads a request body, decompressing gzip or deflate, within a byte limit that applies to what
 * arrives on the wire and to what it inflates to (a 50 KB gzip bomb must not become 5 GB in memory).
 */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);

  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase().trim();
  let decoder: Gunzip | Inflate | undefined;
  if (encoding === 'gzip' || encoding === 'x-gzip') decoder = createGunzip();
  else if (encoding === 'deflate') decoder = createInflate();
  else if (encoding !== 'identity' && encoding !== '') {
    throw new DomainError(
      'unsupported_encoding',
      `Content-Encoding ${encoding} is not supported; use gzip, deflate or none`,
    );
  }

  const chunks: Buffer[] = [];
  let size = 0;
  let wireSize = 0;
  const source = decoder ? req.pipe(decoder) : req;
  try {
    if (decoder) {
      req.on('data', (chunk: Buffer) => {
        wireSize += chunk.length;
        if (wireSize > maxBytes) decoder.destroy(tooLarge(maxBytes));
      });
      req.on('error', (err) => decoder.destroy(err));
    }
    for await (const chunk of source as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) throw tooLarge(maxBytes);
      chunks.push(chunk);
    }
  } catch (err) {
    if (decoder) req.unpipe(decoder);
    req.resume();
    if (err instanceof DomainError) throw err;
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
    if (
      code.startsWith('Z_') ||
      code === 'ERR_ZLIB' ||
      /incorrect header|unexpected end|invalid/i.test(String(err))
    ) {
      throw new DomainError('malformed_body', `the body is not valid ${encoding} data`);
    }
    throw new DomainError('malformed_body', 'the request body could not be read (connection aborted?)');
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

function tooLarge(maxBytes: number): DomainError {
  return new DomainError(
    'payload_too_large',
    `the body is over the ${maxBytes}-byte limit (MAX_BODY_BYTES), compressed or not`,
  );
}

/** The media type without parameters, lower-cased. */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

export function bodyKind(header: string | undefined, allowed: readonly BodyKind[]): BodyKind {
  const type = mediaType(header);
  const kind: BodyKind | undefined =
    type === 'application/json' || type === 'text/json'
      ? 'json'
      : type === 'application/x-ndjson' ||
          type === 'application/ndjson' ||
          type === 'application/jsonl' ||
          type === 'application/x-jsonlines'
        ? 'ndjson'
        : type === 'application/cloudevents+json'
          ? 'cloudevent'
          : type === 'application/cloudevents-batch+json'
            ? 'cloudevents-batch'
            : undefined;
  if (!kind || !allowed.includes(kind)) {
    throw new DomainError(
      'unsupported_media_type',
      `Content-Type ${type || '(none)'} is not accepted here; send one of: ${allowed.map(kindMediaType).join(', ')}`,
    );
  }
  return kind;
}

function kindMediaType(kind: BodyKind): string {
  switch (kind) {
    case 'json':
      return 'application/json';
    case 'ndjson':
      return 'application/x-ndjson';
    case 'cloudevent':
      return 'application/cloudevents+json';
    case 'cloudevents-batch':
      return 'application/cloudevents-batch+json';
  }
}
