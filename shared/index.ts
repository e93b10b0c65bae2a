export * from './reasons';
export * from './problem';
export * from './device';
export * from './entitlements';
export * from './discovery';
export * from './ipc';
export * from './protocol';
export * from './update';
