export { startStripeEmulator } from './server.ts';
export type { RecordedRequest, StripeEmulator, StripeEmulatorOptions } from './server.ts';
export type { FaultKind, FaultOptions, FaultInjector } from './faults.ts';
export type { Customer, EmulatorState, Meter, MeterFormula, StoredMeterEvent } from './state.ts';
export { parseForm } from './form-encoding.ts';
