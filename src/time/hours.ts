/**
 * Whole hours, the unit that meters are evaluated and stored in. All UTC: an hour is the same instant
 * everywhere, and JavaScript dates carry no zone of their own.
 */
export const HOUR_MS = 3_600_000;

/** The start of the hour that holds `d`. */
export const floorHour = (d: Date): Date => new Date(Math.floor(d.getTime() / HOUR_MS) * HOUR_MS);

export const addHours = (d: Date, n: number): Date => new Date(d.getTime() + n * HOUR_MS);

export const isWholeHour = (d: Date): boolean => d.getTime() % HOUR_MS === 0;
