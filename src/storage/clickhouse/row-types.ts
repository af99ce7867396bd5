import { z } from 'zod';

/** Row fields as both engines return them in JSON, checked and converted at the edge. */

/** ClickHouse DateTime text ('YYYY-MM-DD hh:mm:ss', UTC) as a Date. */
export const dateTime = z.string().transform((s) => new Date(`${s.replace(' ', 'T')}Z`));

/** 64-bit integers arrive as strings (18.16, and toString) or numbers: keep them exact. */
export const int64 = z.union([z.string().regex(/^-?\d+$/), z.number().int()]).transform((v) => BigInt(v));

/** A Date as the epoch seconds JSONEachRow takes for a DateTime column. */
export const seconds = (d: Date): number => Math.floor(d.getTime() / 1000);
